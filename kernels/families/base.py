"""The job-time interface of a model family (see :mod:`kernels.families` for the design), with the
family-agnostic defaults that generic families use where no family-specific rule exists."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
from torch import nn

# Where a backbone's forward takes its decoding state, newest transformers naming first (``state``: RWKV).
STATE_KEYWORDS = ("past_state", "cache", "cache_params", "past_key_values", "state")


class FamilyError(ValueError):
    """A family cannot do what the config asks (e.g. activation checkpointing of a backbone without it)."""


def walk_tensor_nbytes(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes of every tensor reachable from ``obj``: lists, tuples, dicts and the attributes of plain objects
    (transformers' and fla's cache classes keep their tensors in attributes of per-layer objects); each object
    once; modules and classes are not entered."""
    seen = set() if seen is None else seen
    if obj is None or id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(walk_tensor_nbytes(value, seen) for value in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(walk_tensor_nbytes(value, seen) for value in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, (type, nn.Module)):
        return sum(walk_tensor_nbytes(value, seen) for value in vars(obj).values())
    return 0


def forward_parameters(backbone: nn.Module) -> frozenset[str]:
    """The parameter names of ``backbone.forward``, read once per forward function: the decode loop asks for
    every token, inside the timed steps, and ``inspect.signature`` costs tens of microseconds."""
    forward = vars(backbone).get("forward") or type(backbone).forward  # an instance's own forward wins
    return _parameters_of(forward)


@functools.lru_cache(maxsize=None)
def _parameters_of(function) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


def state_keyword(backbone: nn.Module) -> str:
    """The keyword of ``backbone.forward`` that takes the decoding state."""
    parameters = forward_parameters(backbone)
    for name in STATE_KEYWORDS:
        if name in parameters:
            return name
    raise TypeError(f"{type(backbone).__name__}.forward takes none of {', '.join(STATE_KEYWORDS)}")


def output_state(output: Any) -> Any:
    """The decoding state of a backbone output, whichever name the library gives it."""
    for name in ("cache", "cache_params", "past_key_values", "state"):
        state = getattr(output, name, None)
        if state is not None:
            return state
    return None


class Family:
    """One model family's job-time behaviour. ``declaration`` is its :class:`kernels.families.Declaration`."""

    def __init__(self, declaration):
        self.declaration = declaration
        self.name = declaration.name

    # ----------------------------------------------------------------------------- building and loading

    def build(self, arch: dict[str, Any], *, vocab_size: int, num_labels: int, pad_token_id: int,
              seed: int | None = None, bos_token_id: int | None = None, eos_token_id: int | None = None):
        raise NotImplementedError

    def load_pretrained(self, source, *, num_labels: int, revision: str | None = None, allow_pickle: bool = False,
                        torch_dtype=None, config_overrides: dict[str, Any] | None = None):
        raise NotImplementedError

    def load_finetuned(self, model_dir, dtype=torch.float32):
        raise NotImplementedError

    def parameter_counts(self, fields: dict[str, Any]) -> tuple[int, int]:
        """(classifier parameters, causal-LM parameters) for config ``fields``, counted on the meta device."""
        raise NotImplementedError

    def meta_classifier(self, fields: dict[str, Any], num_labels: int = 2) -> nn.Module:
        """A classifier for config ``fields`` on the meta device (no memory): for counting."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------- structure

    def backbone(self, model: nn.Module) -> nn.Module:
        return model.model

    def decoder_layers(self, model: nn.Module) -> nn.ModuleList:
        """The stack of decoder blocks: the backbone's ``layers``, else its largest ModuleList of one block
        type (how most libraries name and build it)."""
        backbone = self.backbone(model)
        layers = getattr(backbone, "layers", None)
        if isinstance(layers, nn.ModuleList) and len(layers):
            return layers
        candidates = [m for m in backbone.modules() if isinstance(m, nn.ModuleList) and len(m)
                      and len({type(child) for child in m}) == 1]
        if not candidates:
            raise FamilyError(f"{type(backbone).__name__}: no stack of decoder blocks found")
        return max(candidates, key=len)

    def supports_checkpointing(self, model: nn.Module) -> bool:
        return bool(getattr(model, "supports_gradient_checkpointing", False))

    def check_checkpointing(self, model: nn.Module, where: str = "finetune.gradient_checkpointing") -> None:
        """Raise a clear error when activation checkpointing is asked for a model that does not support it."""
        if not self.supports_checkpointing(model):
            backbone = type(self.backbone(model)).__name__
            raise FamilyError(f"{where} is true, but {backbone} ({self.name} family) does not support activation "
                              "checkpointing; set it to false (or reduce finetune.max_tokens_per_step for memory)")

    # ---------------------------------------------------------------------------------------- efficiency

    def forward_flops_per_token(self, config: Any, context: float) -> float | None:
        """Analytic forward FLOPs of one token attending to ``context`` positions, or None: no formula (the
        profiler counts the timed step with FlopCounterMode instead)."""
        return None

    def decode_head(self, model: nn.Module) -> nn.Module:
        """The LM head a decoded token goes through: a classifier has none, so one of the backbone's shape
        (hidden -> vocabulary) is made (seeded by the caller); only its cost matters."""
        config = model.config
        return nn.Linear(int(config.hidden_size), int(config.vocab_size), bias=False)

    def initial_decode_state(self, backbone: nn.Module, max_length: int) -> Any:
        """The state a decode starts from: None lets the model make its own cache."""
        return None

    def decode_forward(self, backbone: nn.Module, input_ids: torch.Tensor, state: Any, position: int):
        """One backbone call on ``input_ids`` (the prompt, or one token) continuing ``state``; returns the last
        hidden state and the new state. ``position``: index of the first of ``input_ids`` in the sequence."""
        keyword = state_keyword(backbone)
        parameters = forward_parameters(backbone)
        inputs: dict[str, Any] = {"input_ids": input_ids, "use_cache": True}
        if state is not None:
            inputs[keyword] = state
            if "cache_position" in parameters:  # older transformers' recurrent models need it with a cache
                inputs["cache_position"] = torch.arange(position, position + input_ids.shape[1],
                                                        device=input_ids.device)
        output = backbone(**inputs)
        new_state = output_state(output)
        if new_state is None:  # a model that keeps its state out of reach cannot be decoded (or measured) here
            raise FamilyError(f"{type(backbone).__name__} returned no decoding state with use_cache=True: its decode "
                              "cannot continue a prompt through its own cache, so it is not profiled")
        return output.last_hidden_state, new_state

    def state_nbytes(self, state: Any) -> int:
        """Bytes of the decoding state: every tensor the cache holds."""
        return walk_tensor_nbytes(state)

    def probe_layer(self, model: nn.Module, dtype: str):
        """What one decoder block saves for backward (kernels.training.memory), measured family-agnostically."""
        from kernels.training.memory import probe_captured_layer

        return probe_captured_layer(model, self.decoder_layers(model), dtype)

    # ---------------------------------------------------------------------------------------- provenance

    def implementation(self, model: nn.Module, device) -> dict[str, Any]:
        raise NotImplementedError

    def implementation_label(self, model: nn.Module, device) -> str:
        """One line for tables and the report: library, class and path (e.g. ``transformers 5.24.0
        Mamba2Model, slow path (pure PyTorch)``)."""
        info = self.implementation(model, device)
        version = f" {info['library_version']}" if info.get("library_version") else ""
        return f"{info['library']}{version} {info['backbone_class']}, {info['path']}"


__all__ = ["Family", "FamilyError", "walk_tensor_nbytes", "state_keyword", "output_state", "STATE_KEYWORDS"]
