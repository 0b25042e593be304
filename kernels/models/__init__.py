"""The three architectures as transformers config/model classes, and one entry point to build or load
a sequence classifier of any family.

Families (``config["models"][name]["family"]``):
- ``transformer_pp``: Llama-style Transformer++ (``kernels.models.transformer``, model_type ``transformer``)
- ``gla``: Gated Linear Attention Transformer (``kernels.models.gla``, model_type ``gla``)
- ``mmfree``: MatMul-Free LM / HGRN-bit (``kernels.models.hgrn_bit``, model_type ``hgrn_bit``)

Every classifier: ``forward(input_ids, attention_mask=None, labels=None)`` returns a transformers
``SequenceClassifierOutput``; the logits pool the hidden state of the last non-padding token
(padding must be on the right). The backbone is ``model.model``; its ``forward(input_ids,
attention_mask=None, past_state=None, use_cache=False)`` returns ``BaseModelOutputWithPast`` whose
``past_key_values`` is the per-layer state (KV cache or recurrent state), for decoding.
"""

from __future__ import annotations

import importlib
from typing import Any

FAMILIES = {
    # family -> (module, config class, backbone class, classifier class, causal LM class)
    "transformer_pp": ("kernels.models.transformer", "TransformerConfig", "TransformerModel",
                       "TransformerForSequenceClassification", "TransformerForCausalLM"),
    "gla": ("kernels.models.gla", "GLAConfig", "GLAModel",
            "GLAForSequenceClassification", "GLAForCausalLM"),
    "mmfree": ("kernels.models.hgrn_bit", "HGRNBitConfig", "HGRNBitModel",
               "HGRNBitForSequenceClassification", "HGRNBitForCausalLM"),
}


def _family_attr(family: str, index: int):
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}")
    entry = FAMILIES[family]
    return getattr(importlib.import_module(entry[0]), entry[index])


def config_class(family: str):
    return _family_attr(family, 1)


def classifier_class(family: str):
    return _family_attr(family, 3)


def causal_lm_class(family: str):
    return _family_attr(family, 4)


def build_classifier(family: str, arch: dict[str, Any], *, vocab_size: int, num_labels: int,
                     pad_token_id: int, seed: int | None = None):
    """A randomly initialised classifier of ``family`` with architecture ``arch`` (config kwargs)."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    cfg = config_class(family)(vocab_size=vocab_size, num_labels=num_labels,
                               pad_token_id=pad_token_id, **arch)
    return classifier_class(family)(cfg)
