"""The generic families' sequence classifier: a library's causal-LM backbone, pooled at the final ``</s>``.

``BackboneForSequenceClassification(config)`` builds the backbone class the config names (see
:mod:`kernels.models.generic.libraries`) from the nested backbone config and adds ``score``, a linear map
from the backbone's hidden size to the labels, without bias: the only tensor that is not the backbone's.
The logits are ``score(h[b, last])`` where ``last`` is the last non-padding position of row ``b``
(padding on the right, as every input of the workflow has it): the final ``</s>`` of the input template
(``[BOS] A </s>`` / ``[BOS] A </s> B </s>``, :mod:`kernels.tokenization`), where a causal model has read the
whole input. ``inputs_embeds`` may replace ``input_ids`` (white-box attacks). Weights: ``model.*`` (the
backbone under its own parameter names) and ``score.weight``; saved and loaded by transformers'
``save_pretrained`` / ``from_pretrained`` as safetensors.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from kernels.models.common import pool_last_token
from kernels.models.generic.configuration_backbone_classifier import BackboneClassifierConfig
from kernels.models.generic.libraries import backbone_class

try:  # transformers >= 5: init functions that skip tensors already loaded from a checkpoint
    from transformers import initialization as _init
except ImportError:  # pragma: no cover - transformers 4.x
    _init = nn.init


def build_backbone_config(config: BackboneClassifierConfig):
    """The backbone's own config object, from the nested fields."""
    cls = backbone_class(config.backbone_library, config.backbone_class).config_class
    fields = {k: v for k, v in config.backbone_config.items() if k != "model_type"}
    return cls(**fields)


def backbone_hidden_size(backbone: nn.Module) -> int:
    """The width of the backbone's last hidden state: its config's ``hidden_size`` (attribute maps included),
    else the embedding width."""
    size = getattr(getattr(backbone, "config", None), "hidden_size", None)
    if size is None:
        size = backbone.get_input_embeddings().embedding_dim
    return int(size)


class BackboneForSequenceClassification(PreTrainedModel):
    config_class = BackboneClassifierConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _supports_sdpa = True

    def __init__(self, config: BackboneClassifierConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = backbone_class(config.backbone_library, config.backbone_class)(build_backbone_config(config))
        self.score = nn.Linear(backbone_hidden_size(self.model), config.num_labels, bias=False)
        parameters = inspect.signature(self.model.forward).parameters
        self._backbone_takes_mask = "attention_mask" in parameters
        self._backbone_takes_use_cache = "use_cache" in parameters
        self._no_split_modules = list(getattr(self.model, "_no_split_modules", None) or [])
        self.post_init()

    # Activation checkpointing is the backbone's: transformers' switch checks this flag on the outer model.
    @property
    def supports_gradient_checkpointing(self) -> bool:  # type: ignore[override]
        backbone = self.__dict__.get("_modules", {}).get("model")
        return bool(getattr(backbone, "supports_gradient_checkpointing", False))

    def _init_weights(self, module: nn.Module) -> None:
        # Only the head is ours; the backbone's modules get the backbone class's own init (transformers
        # dispatches each sub-model's _init_weights).
        if module is getattr(self, "score", None):
            _init.normal_(module.weight, mean=0.0, std=float(self.config.initializer_range))

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def forward(self, input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None,
                labels: torch.LongTensor | None = None, inputs_embeds: torch.Tensor | None = None,
                **unused: Any) -> SequenceClassifierOutput:
        inputs: dict[str, Any] = {"use_cache": False} if self._backbone_takes_use_cache else {}
        if inputs_embeds is not None:
            inputs["inputs_embeds"] = inputs_embeds
        else:
            inputs["input_ids"] = input_ids
        if attention_mask is not None and self._backbone_takes_mask:
            inputs["attention_mask"] = attention_mask
        outputs = self.model(**inputs)
        hidden = outputs.last_hidden_state if hasattr(outputs, "last_hidden_state") else outputs[0]
        pooled = pool_last_token(hidden, attention_mask)
        logits = self.score(pooled.to(self.score.weight.dtype))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float(), labels.to(logits.device).view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["BackboneForSequenceClassification", "build_backbone_config", "backbone_hidden_size"]
