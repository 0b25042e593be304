"""The three families this package implements itself (Transformer++, GLA, MatMul-Free LM).

Their model code lives in :mod:`kernels.models` (one subpackage each, named by the declaration); what differs
between them at job time is only here: the FLOPs formula (:mod:`kernels.profiling.flops`), the decode head's
type (a BitLinear for MatMul-Free, as upstream) and the decode cache (a preallocated KV cache for
Transformer++). Everything else is shared by :class:`NativeFamily`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

import torch
from torch import nn

from kernels.families.base import Family


class NativeFamily(Family):
    """A family of :mod:`kernels.models` (classes named by its :class:`~kernels.families.Declaration`)."""

    def _class(self, role: str) -> type:
        return getattr(importlib.import_module(self.declaration.module), self.declaration.classes[role])

    @property
    def config_class(self) -> type:
        return self._class("config")

    @property
    def classifier_class(self) -> type:
        return self._class("classifier")

    @property
    def causal_lm_class(self) -> type:
        return self._class("causal_lm")

    @property
    def backbone_class(self) -> type:
        return self._class("backbone")

    # ----------------------------------------------------------------------------- building and loading

    def build(self, arch, *, vocab_size, num_labels, pad_token_id, seed=None, bos_token_id=None, eos_token_id=None):
        from kernels.models import build_classifier

        return build_classifier(self.name, arch, vocab_size=vocab_size, num_labels=num_labels,
                                pad_token_id=pad_token_id, seed=seed, bos_token_id=bos_token_id,
                                eos_token_id=eos_token_id)

    def load_pretrained(self, source, *, num_labels, revision=None, allow_pickle=False, torch_dtype=None,
                        config_overrides=None):
        from kernels.models import load_classifier

        return load_classifier(self.name, source, num_labels=num_labels, revision=revision,
                               allow_pickle=allow_pickle, torch_dtype=torch_dtype, config_overrides=config_overrides)

    def load_finetuned(self, model_dir, dtype=torch.float32):
        return self.classifier_class.from_pretrained(str(model_dir), dtype=dtype)

    @staticmethod
    def _fields(fields: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in fields.items() if k not in ("architectures", "model_type", "torch_dtype")}

    def parameter_counts(self, fields: dict[str, Any]) -> tuple[int, int]:
        classifier = self.meta_classifier(fields, num_labels=3)
        with torch.device("meta"):
            causal_lm = self.causal_lm_class(self.config_class(**self._fields(fields)))
        return (sum(p.numel() for p in classifier.parameters()), sum(p.numel() for p in causal_lm.parameters()))

    def meta_classifier(self, fields: dict[str, Any], num_labels: int = 2) -> nn.Module:
        with torch.device("meta"):
            return self.classifier_class(self.config_class(num_labels=num_labels, **self._fields(fields)))

    def config_of(self, fields: dict[str, Any], num_labels: int = 2):
        """The family's config object for ``fields`` (e.g. for its FLOPs formula)."""
        return self.config_class(num_labels=num_labels, **self._fields(fields))

    # ---------------------------------------------------------------------------------------- efficiency

    def probe_layer(self, model: nn.Module, dtype: str):
        # The rule for this package's blocks: run the last block alone on random hidden states.
        from kernels.training.memory import probe_backbone_block

        return probe_backbone_block(model, dtype)

    # ---------------------------------------------------------------------------------------- provenance

    def kernels_path(self, device) -> str:
        """Which ops run the token mixer (kernels.ops.backend decides between fla's kernels and ours)."""
        from kernels.ops.backend import kernel_provenance

        info = kernel_provenance(device)
        return "fla's triton kernels" if info["kernels"] == "fla" else "this package's pure-PyTorch ops"

    def implementation(self, model: nn.Module, device) -> dict[str, Any]:
        try:
            version = importlib.metadata.version("resilient-efficient-llms")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a checkout on sys.path only
            version = None
        return {"family": self.name, "library": "kernels", "library_version": version,
                "backbone_class": type(self.backbone(model)).__name__, "path": self.kernels_path(device)}


class TransformerPPFamily(NativeFamily):
    def forward_flops_per_token(self, config, context):
        from kernels.profiling.flops import native_forward_flops, transformer_layer_flops

        return native_forward_flops(config, lambda hidden: transformer_layer_flops(config, hidden, context))

    def initial_decode_state(self, backbone, max_length):
        # decodes into a preallocated KV cache, written in place (kernels.models.transformer.cache)
        from kernels.models.transformer.cache import static_cache

        return static_cache(len(backbone.layers), max_length)

    def kernels_path(self, device) -> str:
        return "this package's PyTorch attention (SDPA)"


class GLAFamily(NativeFamily):
    def forward_flops_per_token(self, config, context):
        from kernels.profiling.flops import gla_layer_flops, native_forward_flops

        return native_forward_flops(config, lambda hidden: gla_layer_flops(config, hidden))


class MMFreeFamily(NativeFamily):
    def forward_flops_per_token(self, config, context):
        from kernels.profiling.flops import mmfree_layer_flops, native_forward_flops

        return native_forward_flops(config, lambda hidden: mmfree_layer_flops(config, hidden))

    def decode_head(self, model: nn.Module) -> nn.Module:
        from kernels.ops.bitlinear import BitLinear  # upstream's LM head is a BitLinear too

        return BitLinear(model.config.hidden_size, model.config.vocab_size, bias=False)


__all__ = ["NativeFamily", "TransformerPPFamily", "GLAFamily", "MMFreeFamily"]
