"""Pieces shared by the three model families: weight init, the backbone's run over its layer stack, the
causal-LM and classification heads' forward, last-token pooling, recurrent-state helpers, and
reading/loading upstream checkpoints.

The recurrent kernels (kernels.ops.gla / kernels.ops.hgrn) choose between fla's triton kernels and
the pure-PyTorch ones themselves (kernels.ops.backend); the models just call them."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import (BaseModelOutputWithPast, CausalLMOutputWithPast,
                                           SequenceClassifierOutput)

try:  # transformers >= 5: init functions that skip tensors already loaded from a checkpoint
    from transformers import initialization as _init
except ImportError:  # pragma: no cover - transformers 4.x
    _init = nn.init

from kernels.modules.norm import RMSNorm
from kernels.modules.rotary import RotaryEmbedding

logger = logging.getLogger(__name__)

TRANSFORMERS_MAJOR = int(__import__("transformers").__version__.split(".")[0])


# ----------------------------------------------------------------------------------------------- init

def mark_residual_output(module: nn.Linear) -> nn.Linear:
    """Tag a projection that writes into the residual stream (o_proj, down_proj) for GPT-2 style rescaling."""
    module._residual_output = True
    return module


def tied_weights_keys(head: str, embedding: str):
    """``_tied_weights_keys`` in the format of the installed transformers (dict in v5, list before)."""
    return {head: embedding} if TRANSFORMERS_MAJOR >= 5 else [head]


class FamilyPreTrainedModel(PreTrainedModel):
    """Common base of every model class here.

    Initialisation as fla/mmfreelm: Linear and Embedding weights N(0, initializer_range), biases 0, norm
    gains 1; projections tagged by ``mark_residual_output`` are additionally divided by sqrt(2 L) when the
    config asks for it (``rescale_prenorm_residual``); Linear layers with a ``_xavier_init_gain`` attribute get
    xavier_uniform with that gain instead (HGRN-bit's token mixer). Modules holding parameters of their own
    define ``reset_family_parameters(init)`` (e.g. HGRN-bit's lower bounds); transformers >= 5 only visits
    modules that hold parameters directly.
    """

    base_model_prefix = "model"
    # Every decoder block is a transformers ``GradientCheckpointingLayer``: ``activation_checkpointing_enable()``
    # (``gradient_checkpointing_enable()`` before transformers 5.2x) recomputes each block in backward.
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear) and hasattr(module, "_xavier_init_gain"):
            _init.xavier_uniform_(module.weight, gain=module._xavier_init_gain)
            if module.bias is not None:
                _init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):  # BitLinear is an nn.Linear
            if getattr(module, "_residual_output", False) and getattr(self.config, "rescale_prenorm_residual", False):
                std = std / math.sqrt(2 * self.config.num_hidden_layers)
            _init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                _init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            _init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, RMSNorm) and module.weight is not None:
            _init.ones_(module.weight)
        elif isinstance(module, RotaryEmbedding):
            # Non-persistent buffer: recompute it, since from_pretrained may have built the model on meta.
            inv_freq = 1.0 / (module.base ** (torch.arange(0, module.dim, 2, dtype=torch.float32) / module.dim))
            copy = getattr(_init, "copy_", None)  # transformers 4.x: plain in-place copy
            if copy is not None:
                copy(module.inv_freq, inv_freq.to(module.inv_freq.device))
            else:
                module.inv_freq.copy_(inv_freq)
        if hasattr(module, "reset_family_parameters"):
            module.reset_family_parameters(_init)


def set_activation_checkpointing(model: PreTrainedModel, enabled: bool) -> None:
    """Turn per-block activation checkpointing on or off through transformers' own switch.

    On: every decoder block keeps only its inputs in the forward pass and is run again in backward
    (non-reentrant ``torch.utils.checkpoint``, so gradients equal those without it). Newer transformers
    call the switch ``activation_checkpointing_enable``; older 5.x releases (5.17, the oldest this package
    accepts and CI tests) ``gradient_checkpointing_enable``. Those older releases also route a block through
    the checkpoint function when autograd is off (``torch.no_grad``), where there is no backward to replay:
    the function set here runs the block directly then, as newer releases do, on every version alike.
    """
    if enabled:
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:  # transformers releases before the rename (5.17)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        for module in model.modules():
            checkpoint = getattr(module, "_gradient_checkpointing_func", None)
            if getattr(module, "gradient_checkpointing", False) and checkpoint is not None:
                module._gradient_checkpointing_func = _checkpoint_with_grad_only(checkpoint)
        return
    disable = getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable
    disable()
    # enabling also made the embedding output require grad (for frozen embeddings); undo that hook too
    model.disable_input_require_grads()


def _checkpoint_with_grad_only(checkpoint):
    """``checkpoint(fn, *args)`` when autograd records, else ``fn(*args)`` (nothing to recompute for)."""
    if getattr(checkpoint, "_grad_only", False):
        return checkpoint

    def run(function, *args, **kwargs):
        if torch.is_grad_enabled():
            return checkpoint(function, *args, **kwargs)
        return function(*args, **kwargs)

    run._grad_only = True
    return run


# -------------------------------------------------------------------------------------- pooling/head

def check_right_padding(attention_mask: torch.Tensor) -> None:
    """Raise unless every row of the 0/1 mask is ones followed by zeros, with at least one token."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be [batch, time], got shape {tuple(attention_mask.shape)}")
    mask = attention_mask.to(torch.int64)
    if bool((mask[:, 1:] > mask[:, :-1]).any()):
        raise ValueError("attention_mask must use right padding (ones then zeros in every row)")
    if bool((mask[:, 0] == 0).any()):
        raise ValueError("attention_mask has a row without any token")


def last_token_index(attention_mask: torch.Tensor | None, batch_size: int, seq_len: int,
                     device: torch.device) -> torch.Tensor:
    """Index of the last non-padding token of each row (right padding); the last position without a mask."""
    if attention_mask is None:
        return torch.full((batch_size,), seq_len - 1, dtype=torch.long, device=device)
    check_right_padding(attention_mask)
    return attention_mask.to(torch.long).sum(dim=1).to(device) - 1


def pool_last_token(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """``hidden[b, last_non_pad(b)]`` for hidden of shape [batch, time, dim]."""
    batch, seq_len, _ = hidden.shape
    index = last_token_index(attention_mask, batch, seq_len, hidden.device)
    return hidden[torch.arange(batch, device=hidden.device), index]


def padding_keep_mask(attention_mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """[batch, time, 1] mask in ``like``'s dtype (1 = real token), or None."""
    if attention_mask is None:
        return None
    return attention_mask.to(device=like.device, dtype=like.dtype).unsqueeze(-1)


class SequenceClassifierMixin:
    """Forward of every ``*ForSequenceClassification``: backbone ``self.model``, head ``self.score``."""

    def _init_classifier(self, backbone: nn.Module, config) -> None:
        self.num_labels = config.num_labels
        self.model = backbone
        # A new, full-precision head for every family (also for HGRN-bit, whose lm_head is a BitLinear).
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)

    def get_input_embeddings(self):
        return self.model.embeddings

    def set_input_embeddings(self, value):
        self.model.embeddings = value

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None,
                labels: torch.LongTensor | None = None, **unused: Any) -> SequenceClassifierOutput:
        outputs = self.model(input_ids, attention_mask=attention_mask)
        pooled = pool_last_token(outputs.last_hidden_state, attention_mask)
        logits = self.score(pooled.to(self.score.weight.dtype))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float(), labels.to(logits.device).view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _state_field_name() -> str:
    """Where transformers' model outputs keep the decoding state: ``cache`` since transformers 5.2x
    (``past_key_values`` is its deprecated alias, which logs a warning), ``past_key_values`` before."""
    from transformers.modeling_outputs import BaseModelOutputWithPast

    return "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


def decode_state_field(state: Any) -> dict[str, Any]:
    """Keyword for a model output's decoding state under the installed transformers' name."""
    return {_state_field_name(): state}


def decode_state_of(output) -> Any:
    """The decoding state (KV cache or recurrent state) of a backbone / causal-LM output."""
    return getattr(output, _state_field_name())


def causal_lm_loss(logits: torch.Tensor, labels: torch.LongTensor) -> torch.Tensor:
    """Next-token cross-entropy; label -100 is ignored (as in transformers)."""
    shifted = logits[:, :-1].float().reshape(-1, logits.shape[-1])
    targets = labels[:, 1:].reshape(-1).to(logits.device)
    return F.cross_entropy(shifted, targets, ignore_index=-100)


class CausalLMMixin:
    """Accessors and forward of every ``*ForCausalLM``: backbone ``self.model``, head ``self.lm_head``
    (the families differ only in the head's type, chosen in their ``__init__``)."""

    _tied_weights_keys = tied_weights_keys("lm_head.weight", "model.embeddings.weight")

    def get_input_embeddings(self):
        return self.model.embeddings

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def forward(self, input_ids, attention_mask=None, labels=None, past_state=None, use_cache=False,
                **unused) -> CausalLMOutputWithPast:
        out = self.model(input_ids, attention_mask=attention_mask, past_state=past_state, use_cache=use_cache)
        logits = self.lm_head(out.last_hidden_state)
        loss = causal_lm_loss(logits, labels) if labels is not None else None
        return CausalLMOutputWithPast(loss=loss, logits=logits, **decode_state_field(decode_state_of(out)))


# --------------------------------------------------------------------------------------------- state

def state_nbytes(state: Any) -> int:
    """Total bytes of every tensor in a (nested list/tuple/dict of) per-layer state."""
    if state is None:
        return 0
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_nbytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_nbytes(v) for v in state)
    raise TypeError(f"state_nbytes: unsupported state element of type {type(state).__name__}")


def check_past_state(past_state: Any, num_layers: int) -> list:
    """The per-layer state list, or a list of ``None`` when starting fresh."""
    if past_state is None:
        return [None] * num_layers
    if len(past_state) != num_layers:
        raise ValueError(f"past_state has {len(past_state)} entries, the model has {num_layers} layers")
    return list(past_state)


# ------------------------------------------------------------------------------------------ backbone

class BackboneMixin:
    """Accessors and forward of every ``*Model`` backbone: ``embeddings`` -> ``layers`` -> ``norm``.

    Each layer is called as ``layer(hidden, attention_mask, past, use_cache, *extra)`` and returns
    ``(hidden, state)``; ``per_layer_inputs()`` supplies the optional extra argument of each layer
    (HGRN-bit's forget-gate lower bounds), or None when the layers take none."""

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, value):
        self.embeddings = value

    def per_layer_inputs(self) -> torch.Tensor | list | None:
        """One extra input per layer (indexed by layer), or None: the families' layers take none by default."""
        return None

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None,
                past_state: list | None = None, use_cache: bool = False, **unused) -> BaseModelOutputWithPast:
        hidden = self.embeddings(input_ids)
        pasts = check_past_state(past_state, len(self.layers))
        inputs = self.per_layer_inputs()
        new_state = []
        for index, (layer, past) in enumerate(zip(self.layers, pasts)):
            extra = () if inputs is None else (inputs[index],)
            hidden, state = layer(hidden, attention_mask, past, use_cache, *extra)
            new_state.append(state)
        return BaseModelOutputWithPast(last_hidden_state=self.norm(hidden),
                                       **decode_state_field(new_state if use_cache else None))


# ----------------------------------------------------------------------------------- checkpoint I/O

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_FILE = "pytorch_model.bin"
PICKLE_INDEX = "pytorch_model.bin.index.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded (missing file, wrong type, missing or mis-shaped weights)."""


def resolve_checkpoint_dir(source: str | os.PathLike, revision: str | None = None,
                           allow_pickle: bool = False) -> Path:
    """A local directory for ``source``: itself if it is a directory, else a hub snapshot (paper scale)."""
    path = Path(source)
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path}: checkpoint source must be a directory, not a file")
    from huggingface_hub import snapshot_download  # only needed for hub ids

    patterns = ["config.json", "*.safetensors", SAFETENSORS_INDEX]
    if allow_pickle:
        patterns += [PICKLE_FILE, PICKLE_INDEX, "pytorch_model-*.bin"]
    try:
        return Path(snapshot_download(repo_id=str(source), revision=revision, allow_patterns=patterns))
    except Exception as err:  # network, auth, unknown id: say which source failed
        raise CheckpointError(f"cannot find checkpoint {source!r} (revision {revision!r}) locally or on "
                              f"the hub: {err}") from err


def read_checkpoint_config(directory: Path) -> dict:
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{config_file}: missing (a checkpoint directory needs config.json)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{config_file}: not valid JSON ({err})") from err
    if not isinstance(config, dict) or "model_type" not in config:
        raise CheckpointError(f"{config_file}: field 'model_type' is missing")
    return config


def _shard_files(directory: Path, index_name: str) -> list[Path]:
    index_file = directory / index_name
    try:
        weight_map = json.loads(index_file.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{index_file}: field 'weight_map' is missing or invalid ({err})") from err
    files = [directory / name for name in sorted(set(weight_map.values()))]
    for file in files:
        if not file.is_file():
            raise CheckpointError(f"{index_file}: lists shard {file.name}, which is missing")
    return files


def checkpoint_weight_files(directory: Path, allow_pickle: bool = False) -> tuple[list[Path], bool]:
    """The weight files of a checkpoint and whether they are pickles. Safetensors are preferred."""
    if (directory / SAFETENSORS_INDEX).is_file():
        return _shard_files(directory, SAFETENSORS_INDEX), False
    if (directory / SAFETENSORS_FILE).is_file():
        return [directory / SAFETENSORS_FILE], False
    singles = sorted(directory.glob("*.safetensors"))
    if len(singles) == 1:
        return singles, False
    has_pickle = (directory / PICKLE_FILE).is_file() or (directory / PICKLE_INDEX).is_file()
    if has_pickle and not allow_pickle:
        raise CheckpointError(f"{directory}: only {PICKLE_FILE} weights found; pickled weights are refused "
                              f"(convert them to safetensors, or pass allow_pickle=True to load them with "
                              f"torch.load(weights_only=True))")
    if (directory / PICKLE_INDEX).is_file():
        return _shard_files(directory, PICKLE_INDEX), True
    if (directory / PICKLE_FILE).is_file():
        return [directory / PICKLE_FILE], True
    raise CheckpointError(f"{directory}: no {SAFETENSORS_FILE} (or {SAFETENSORS_INDEX}) found")


def read_state_dict(files: Iterable[Path], pickled: bool) -> tuple[dict[str, torch.Tensor], dict[str, Path]]:
    """All tensors of the given files, plus which file each key came from (for error messages)."""
    state: dict[str, torch.Tensor] = {}
    origin: dict[str, Path] = {}
    for file in files:
        part = _read_weight_file(file, pickled)
        for key, tensor in part.items():
            state[key] = tensor
            origin[key] = file
    return state, origin


def unpickling_refusal(err: BaseException) -> str:
    """The reason in torch's ``weights_only`` refusal, without its advice to load with ``weights_only=False``
    (which would run whatever code the file holds: this workflow never does that)."""
    lines = [line.strip() for line in str(err).splitlines()]
    reason = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("WeightsUnpickler error:")),
                  None)
    return reason.split(" Please use ")[0] if reason else type(err).__name__


def _read_weight_file(file: Path, pickled: bool) -> dict[str, torch.Tensor]:
    """The tensors of one checkpoint file; a damaged or refused file is a CheckpointError naming its path."""
    if pickled:
        import pickle

        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise CheckpointError(f"{file}: refused: it holds more than tensors ({unpickling_refusal(err)}); "
                                  "convert the checkpoint to safetensors") from None
        except (EOFError, RuntimeError, OSError) as err:
            raise CheckpointError(f"{file}: not a readable torch checkpoint ({type(err).__name__}: {err})") from None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError) as err:
        from kernels.pretrained import safetensors_problem

        detail = safetensors_problem(file) or f"{type(err).__name__}: {err}"
        raise CheckpointError(f"{file}: not a complete safetensors file: {detail}") from None


def add_backbone_prefix(state: dict[str, torch.Tensor], prefix: str = "model.") -> dict[str, torch.Tensor]:
    """Checkpoints of a bare backbone (saved from ``*Model``) lack the ``model.`` prefix: add it."""
    if any(key.startswith(prefix) for key in state):
        return state
    return {prefix + key: value for key, value in state.items()}


def split_fused_gated_mlp(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Older fla checkpoints (2024) store the SwiGLU MLP as one ``gate_proj`` of 2I rows (``gate, up =
    gate_proj(x).chunk(2)``) and no ``up_proj``; split such weights into our ``gate_proj``/``up_proj``.
    Only applied where our model expects ``up_proj`` and the checkpoint lacks it, with exactly twice the rows.
    (Written from fla's source history; not verified against a published hub file.)"""
    converted = dict(state)
    for key in own:
        if not key.endswith(".mlp.up_proj.weight") or key in state:
            continue
        gate_key = key.replace(".up_proj.", ".gate_proj.")
        fused = state.get(gate_key)
        if fused is None or fused.shape[0] != 2 * own[gate_key].shape[0]:
            continue
        converted[gate_key], converted[key] = (part.contiguous() for part in fused.chunk(2, dim=0))
        logger.info("split fused %s (%s rows) into gate_proj and up_proj", gate_key, fused.shape[0])
    return converted


def load_backbone_weights(model: nn.Module, state: dict[str, torch.Tensor], origin: dict[str, Path],
                          where: Path, new_prefixes: tuple[str, ...] = ("score.",)) -> dict:
    """Copy every backbone weight of ``state`` into ``model``; only parameters under ``new_prefixes`` may
    be missing. Raises ``CheckpointError`` naming the file(s) and keys on missing or mis-shaped weights;
    logs the keys that are new and the checkpoint keys that are not used (e.g. ``lm_head.*``), and returns
    them: ``{"source", "loaded_tensors", "loaded_parameters", "new_tensors", "unused_checkpoint_keys"}``."""
    own = model.state_dict()
    new_keys = sorted(k for k in own if k.startswith(new_prefixes))
    missing = sorted(k for k in own if k not in state and not k.startswith(new_prefixes))
    if missing:
        raise CheckpointError(f"{where}: checkpoint lacks {len(missing)} backbone weight(s): {missing[:20]}"
                              + (" ..." if len(missing) > 20 else ""))
    mismatched = [f"{k} in {Path(origin.get(k, where)).name}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if mismatched:
        raise CheckpointError(f"{where}: backbone weight shapes do not match the config: " + "; ".join(mismatched))
    unexpected = sorted(k for k in state if k not in own)
    to_load = {k: v for k, v in state.items() if k in own and not k.startswith(new_prefixes)}
    model.load_state_dict(to_load, strict=False)
    logger.info("loaded %d backbone tensors from %s; newly initialised: %s", len(to_load), where, new_keys)
    if unexpected:
        logger.info("checkpoint keys not used by the classifier: %s", unexpected)
    return {"source": str(where), "loaded_tensors": len(to_load),
            "loaded_parameters": int(sum(t.numel() for t in to_load.values())),
            "new_tensors": new_keys, "unused_checkpoint_keys": unexpected}


__all__ = [
    "FamilyPreTrainedModel", "BackboneMixin", "CausalLMMixin", "SequenceClassifierMixin",
    "set_activation_checkpointing", "mark_residual_output", "tied_weights_keys",
    "pool_last_token", "last_token_index", "check_right_padding", "padding_keep_mask", "causal_lm_loss",
    "state_nbytes", "check_past_state", "decode_state_field", "decode_state_of",
    "CheckpointError", "resolve_checkpoint_dir", "read_checkpoint_config", "checkpoint_weight_files",
    "read_state_dict", "add_backbone_prefix", "split_fused_gated_mlp", "load_backbone_weights",
    "register_with_auto_classes",
]


# ------------------------------------------------------------------------------ Auto registration

def _auto_config_owner(model_type: str):
    """The config class the Auto mapping currently holds for ``model_type``, or None."""
    from transformers import CONFIG_MAPPING

    try:
        return CONFIG_MAPPING[model_type]
    except KeyError:
        return None


def register_with_auto_classes(config_class, model_class, causal_lm_class, classifier_class,
                               defer_to_packages: tuple[str, ...] = ()) -> bool:
    """Register one family with transformers' Auto classes (no trust_remote_code needed).

    Uses ``exist_ok=True`` so that re-imports do not fail. Upstream implementations win the Auto mapping:
    if another library's config (fla's, after ``import fla``) already owns the model type we leave it, and fla
    itself registers with ``exist_ok=True``, so importing fla later takes the mapping over. Packages in
    ``defer_to_packages`` register *without* ``exist_ok`` (mmfreelm), so if one is installed we do not
    register at all, or importing it afterwards would raise. Our classes stay reachable through
    ``kernels.models``' own registry in every case, and import never fails because of this (errors are logged).
    Returns whether our classes were registered.
    """
    import importlib.util

    from transformers import (AutoConfig, AutoModel, AutoModelForCausalLM,
                              AutoModelForSequenceClassification)

    model_type = config_class.model_type
    try:
        if any(importlib.util.find_spec(name) is not None for name in defer_to_packages):
            logger.info("%r: leaving the Auto mapping to the installed upstream package", model_type)
            return False
        owner = _auto_config_owner(model_type)
        if owner is not None and owner.__module__.split(".")[0] != "kernels":
            logger.info("%r: Auto classes already map it to %s.%s; keeping that", model_type,
                        owner.__module__, owner.__name__)
            return False
        AutoConfig.register(model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        AutoModelForCausalLM.register(config_class, causal_lm_class, exist_ok=True)
        AutoModelForSequenceClassification.register(config_class, classifier_class, exist_ok=True)
    except Exception as err:  # an API change or a clash we did not foresee: stay importable
        logger.info("not registered with transformers Auto classes for %r: %s", model_type, err)
        return False
    return True
