"""Gated Linear Attention Transformer in fla 0.6's layout; model_type ``gla``."""

from kernels.models.common import register_with_auto_classes
from kernels.models.gla.configuration_gla import GLAConfig
from kernels.models.gla.modeling_gla import (GatedLinearAttention, GLAForCausalLM, GLAForSequenceClassification,
                                             GLAModel, GLAPreTrainedModel)

register_with_auto_classes(GLAConfig, GLAModel, GLAForCausalLM, GLAForSequenceClassification)

__all__ = ["GLAConfig", "GLAModel", "GLAForCausalLM", "GLAForSequenceClassification", "GLAPreTrainedModel",
           "GatedLinearAttention"]
