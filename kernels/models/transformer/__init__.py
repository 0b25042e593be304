"""Transformer++ (Llama-style softmax attention) in fla's layout; model_type ``transformer``."""

from kernels.models.common import register_with_auto_classes
from kernels.models.transformer.configuration_transformer import TransformerConfig
from kernels.models.transformer.modeling_transformer import (TransformerForCausalLM,
                                                             TransformerForSequenceClassification,
                                                             TransformerModel, TransformerPreTrainedModel)

register_with_auto_classes(TransformerConfig, TransformerModel, TransformerForCausalLM,
                           TransformerForSequenceClassification)

__all__ = ["TransformerConfig", "TransformerModel", "TransformerForCausalLM",
           "TransformerForSequenceClassification", "TransformerPreTrainedModel"]
