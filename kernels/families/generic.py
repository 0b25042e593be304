"""The generic families: ``hf`` (transformers' own models) and ``fla`` (fla's model zoo).

Both wrap the library's base-model class in :class:`kernels.models.generic.BackboneForSequenceClassification`
(our ``score`` head on the final ``</s>``). The backbone classes come from the library the family names
(:func:`kernels.models.generic.resolve`), so ``family: hf`` runs transformers' Mamba even after ``import
fla`` has taken the Auto mapping of ``mamba`` over, and ``family: fla`` runs fla's.

- From scratch: ``arch = {model_type: ..., <config fields>}`` builds the library's config class of that model
  type (what ``AutoConfig.for_model`` does, without the shared Auto mapping) with the tokenizer's vocabulary
  and special tokens.
- Pretrained: a hub id or directory in the library's causal-LM layout (``config.json``, safetensors weights
  ``<base_model_prefix>.*`` and ``lm_head.*``), read with :mod:`kernels.models.common`'s helpers: every
  backbone tensor must be in the checkpoint with its shape, only ``score`` is new, ``lm_head.*`` is reported
  unused; ``trust_remote_code`` is never used (an ``auto_map`` in the config is ignored).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import Any

import torch
from torch import nn

from kernels.families.base import Family, FamilyError


def _library_version(library: str) -> str | None:
    from kernels.families.sources import library_version

    return library_version(library)


class GenericFamily(Family):
    """A family whose models are one library's causal-LM backbones inside our classifier."""

    @property
    def library(self) -> str:
        return self.declaration.library

    def classes(self, model_type: str):
        from kernels.models.generic import BackboneResolutionError, resolve

        try:
            return resolve(self.library, model_type)
        except BackboneResolutionError as error:
            raise FamilyError(f"family {self.name!r}: {error}") from None

    def _classifier(self, classes, backbone_config, num_labels: int, pad_token_id: int | None):
        from kernels.models.generic import BackboneClassifierConfig, BackboneForSequenceClassification, backbone_fields

        config = BackboneClassifierConfig(
            backbone_library=self.library, backbone_class=classes.backbone.__name__,
            backbone_model_type=classes.model_type, backbone_config=backbone_fields(backbone_config.to_dict()),
            num_labels=num_labels, pad_token_id=pad_token_id)
        return BackboneForSequenceClassification(config)

    def _backbone_config(self, classes, fields: dict[str, Any], where: str):
        try:
            return classes.config(**fields)
        except Exception as error:  # noqa: BLE001 - strict configs reject bad values and inconsistent sizes
            raise FamilyError(f"{where}: {self.library}'s {classes.config.__name__} rejects it: "
                              f"{type(error).__name__}: {error}") from None

    # ----------------------------------------------------------------------------- building and loading

    def build(self, arch, *, vocab_size, num_labels, pad_token_id, seed=None, bos_token_id=None, eos_token_id=None):
        fields = dict(arch or {})
        model_type = fields.pop("model_type", None)
        if not model_type:
            raise FamilyError(f"family {self.name!r} built from scratch needs arch.model_type")
        classes = self.classes(model_type)
        special = {k: v for k, v in (("pad_token_id", pad_token_id), ("bos_token_id", bos_token_id),
                                     ("eos_token_id", eos_token_id)) if v is not None}
        backbone_config = self._backbone_config(classes, {**fields, "vocab_size": int(vocab_size), **special},
                                                f"arch ({model_type})")
        if seed is not None:
            torch.manual_seed(seed)
        return self._classifier(classes, backbone_config, num_labels, pad_token_id)

    def load_pretrained(self, source, *, num_labels, revision=None, allow_pickle=False, torch_dtype=None,
                        config_overrides=None):
        from kernels.models import _default_dtype
        from kernels.models.common import (CheckpointError, checkpoint_weight_files, load_backbone_weights,
                                           read_checkpoint_config, read_state_dict, resolve_checkpoint_dir)
        from kernels.models.generic import backbone_fields

        directory = resolve_checkpoint_dir(source, revision, allow_pickle=allow_pickle)
        raw = read_checkpoint_config(directory)
        try:
            classes = self.classes(raw["model_type"])
        except FamilyError as error:
            raise CheckpointError(f"{directory / 'config.json'}: field 'model_type': {error}") from None
        # the library reads its own config.json (e.g. transformers' encoding of infinite floats); a local file,
        # never remote code
        fields = backbone_fields(classes.config.get_config_dict(str(directory))[0])
        fields.update(config_overrides or {})
        backbone_config = self._backbone_config(classes, fields, str(directory / "config.json"))
        files, pickled = checkpoint_weight_files(directory, allow_pickle=allow_pickle)
        state, origin = read_state_dict(files, pickled)
        prefix = getattr(classes.causal_lm or classes.backbone, "base_model_prefix", "model") or "model"
        state, origin = classifier_keys(state, origin, prefix)
        if isinstance(torch_dtype, str):
            torch_dtype = getattr(torch, torch_dtype)
        with _default_dtype(torch_dtype if torch_dtype in (torch.float16, torch.bfloat16, torch.float32) else None):
            model = self._classifier(classes, backbone_config, num_labels, fields.get("pad_token_id"))
        where = files[0] if len(files) == 1 else directory
        model.checkpoint_loading_info = load_backbone_weights(model, state, origin, where)
        if torch_dtype is not None:
            model = model.to(torch_dtype)
        return model

    def load_finetuned(self, model_dir, dtype=torch.float32):
        from kernels.models.generic import BackboneForSequenceClassification

        model = BackboneForSequenceClassification.from_pretrained(str(model_dir), dtype=dtype)
        if model.config.backbone_library != self.library:
            raise FamilyError(f"{model_dir}: a {model.config.backbone_library} backbone, but family {self.name!r} "
                              f"runs {self.library}'s")
        return model

    def parameter_counts(self, fields: dict[str, Any]) -> tuple[int, int]:
        classes, backbone_config = self._counted_config(fields)
        with torch.device("meta"):
            classifier = self._classifier(classes, backbone_config, 3, fields.get("pad_token_id"))
            causal_lm = (classes.causal_lm or classes.backbone)(backbone_config)
        return (sum(p.numel() for p in classifier.parameters()), sum(p.numel() for p in causal_lm.parameters()))

    def meta_classifier(self, fields: dict[str, Any], num_labels: int = 2) -> nn.Module:
        classes, backbone_config = self._counted_config(fields)
        with torch.device("meta"):
            return self._classifier(classes, backbone_config, num_labels, fields.get("pad_token_id"))

    def _counted_config(self, fields: dict[str, Any]):
        from kernels.models.generic import backbone_fields

        model_type = fields.get("model_type")
        if not model_type:
            raise FamilyError(f"family {self.name!r}: counting needs the config's model_type")
        classes = self.classes(model_type)
        return classes, self._backbone_config(classes, backbone_fields(dict(fields)), f"{model_type} config")

    # ---------------------------------------------------------------------------------------- provenance

    def implementation(self, model: nn.Module, device) -> dict[str, Any]:
        backbone = self.backbone(model)
        return {"family": self.name, "library": self.library, "library_version": _library_version(self.library),
                "backbone_class": type(backbone).__name__, "backbone_module": type(backbone).__module__,
                "model_type": getattr(model.config, "backbone_model_type", None), "path": self.path(backbone, device)}

    def path(self, backbone: nn.Module, device) -> str:
        raise NotImplementedError


def classifier_keys(state: dict[str, torch.Tensor], origin: dict, prefix: str):
    """A causal-LM checkpoint's keys as the classifier's: ``<prefix>.x`` -> ``model.x`` (a bare backbone
    checkpoint without the prefix: every key); others (``lm_head.*``) stay as they are, and are unused."""
    marker = f"{prefix}."
    bare = not any(key.startswith(marker) for key in state)

    def rename(key: str) -> str:
        if bare:
            return f"model.{key}"
        return f"model.{key[len(marker):]}" if key.startswith(marker) else key

    return ({rename(k): v for k, v in state.items()}, {rename(k): v for k, v in origin.items()})


# Optional kernel packages that transformers' recurrent models run instead of their pure-PyTorch slow path, by
# the name their modeling file refers to them with (the package to look for; None: fetched from the hub).
FAST_PATH_KERNELS = {"mamba_ssm": "mamba_ssm", "causal_conv1d": "causal_conv1d", "is_xlstm_available": "xlstm",
                     "rwkv_cuda_kernel": None}


def fast_path_kernels(backbone: nn.Module) -> list[str]:
    """The optional kernels the backbone's modeling file can use (empty: it has one PyTorch path only)."""
    import sys

    module = sys.modules.get(type(backbone).__module__)
    try:
        source = open(module.__file__, encoding="utf-8").read() if module and module.__file__ else ""
    except OSError:
        source = ""
    return [marker for marker in FAST_PATH_KERNELS if marker in source]


class TransformersFamily(GenericFamily):
    """``family: hf``: transformers' own implementation of a model type."""

    def path(self, backbone: nn.Module, device) -> str:
        markers = fast_path_kernels(backbone)
        if not markers:
            return "PyTorch (transformers has one implementation of this model)"
        packages = sorted({FAST_PATH_KERNELS[m] or "hub kernels" for m in markers})
        if str(device).split(":")[0] != "cuda":
            return f"slow path (pure PyTorch; the fast path's kernels, {', '.join(packages)}, need a GPU)"
        found = [p for p in packages if p != "hub kernels" and importlib.util.find_spec(p) is not None]
        if found:
            return f"fast path available ({', '.join(found)} installed)"
        return f"slow path (pure PyTorch: {' / '.join(packages)} not installed)"


class FlaFamily(GenericFamily):
    """``family: fla``: fla's model zoo; its token mixers are fla's triton kernels (CUDA, or triton's CPU
    interpreter with ``TRITON_INTERPRET=1``, slowly)."""

    def probe_layer(self, model: nn.Module, dtype: str):
        # fla's blocks are triton kernels: measured on CUDA (where the fine-tune moves the model next anyway) or
        # under triton's CPU interpreter; plain CPU cannot run them
        device = next(model.parameters()).device
        if device.type != "cuda":
            if torch.cuda.is_available():
                model.to("cuda")
            elif os.environ.get("TRITON_INTERPRET") != "1":
                raise FamilyError("fla's decoder blocks run only on CUDA (or with TRITON_INTERPRET=1): "
                                  "no memory plan on this CPU")
        return super().probe_layer(model, dtype)

    def path(self, backbone: nn.Module, device) -> str:
        if str(device).split(":")[0] == "cuda":
            return "fla's triton kernels"
        if os.environ.get("TRITON_INTERPRET") == "1":
            return "fla's triton kernels under triton's CPU interpreter (TRITON_INTERPRET=1)"
        return "fla's triton kernels (CPU: needs TRITON_INTERPRET=1)"


__all__ = ["GenericFamily", "TransformersFamily", "FlaFamily", "classifier_keys", "FAST_PATH_KERNELS",
           "fast_path_kernels"]
