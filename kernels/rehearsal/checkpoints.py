"""Tiny causal-LM checkpoints in the layouts of the published 1.3B checkpoints of the paper.

``PUBLISHED_CONFIGS`` records the ``config.json`` fields of ``fla-hub/transformer-1.3B-100B``,
``fla-hub/gla-1.3B-100B`` and ``ridger/MMfreeLM-1.3B`` as those repositories publish them: written by the
fla / mmfreelm versions of 2024, so they carry older field names than fla 0.6 (``rms_norm_eps`` instead of
``norm_eps``; GLA's ``attn_mode: fused_chunk``, ``use_gk``/``use_gv``, ``share_conv_kernel`` and no
``use_output_gate``; HGRN-bit's ``num_heads``, ``expand_ratio``, ``use_lower_bound``). A rehearsal
checkpoint keeps every field and swaps only the sizes (``TINY_SIZES``) and the vocabulary.

Weights are bf16 safetensors (``torch_dtype: bfloat16``, as published). The GLA weights are written by
fla's own ``GLAForCausalLM`` when fla is installed (its Transformer needs flash-attn even to construct,
and mmfreelm is not installable, so those two are written by this package's classes, whose parameter
names follow fla and mmfreelm).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

PUBLISHED_CONFIGS: dict[str, dict] = {
    "transformer_pp": {
        "architectures": ["TransformerForCausalLM"], "model_type": "transformer",
        "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2, "fuse_cross_entropy": True,
        "fuse_norm": True, "hidden_act": "swish", "hidden_ratio": 4, "hidden_size": 2048,
        "initializer_range": 0.02, "intermediate_size": None, "max_position_embeddings": 2048,
        "num_heads": 32, "num_hidden_layers": 24, "num_kv_heads": None, "rms_norm_eps": 1e-06,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 32000,
    },
    "gla": {
        "architectures": ["GLAForCausalLM"], "model_type": "gla",
        "attn_mode": "fused_chunk", "bos_token_id": 1, "clamp_min": None, "conv_size": 4, "eos_token_id": 2,
        "expand_k": 0.5, "expand_v": 1, "fuse_cross_entropy": True, "fuse_norm": True, "hidden_act": "swish",
        "hidden_ratio": 4, "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": None,
        "max_position_embeddings": 2048, "num_heads": 4, "num_hidden_layers": 24, "rms_norm_eps": 1e-06,
        "share_conv_kernel": True, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
        "use_gk": True, "use_gv": False, "use_short_conv": False, "vocab_size": 32000,
    },
    "mmfree": {
        "architectures": ["HGRNBitForCausalLM"], "model_type": "hgrn_bit",
        "attn_mode": "fused_recurrent", "bos_token_id": 1, "conv_size": 4, "eos_token_id": 2, "expand_ratio": 1,
        "fuse_cross_entropy": True, "hidden_act": "swish", "hidden_ratio": 4, "hidden_size": 2048,
        "initializer_range": 0.02, "intermediate_size": None, "max_position_embeddings": 2048, "num_heads": 1,
        "num_hidden_layers": 24, "rms_norm_eps": 1e-06, "share_conv_kernel": True, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "use_cache": True, "use_lower_bound": True, "use_short_conv": False,
        "vocab_size": 32000,
    },
}

# Only sizes change: hidden 64 with 2 layers keeps every head / expand-ratio constraint of the originals.
TINY_SIZES: dict[str, dict] = {
    "transformer_pp": {"hidden_size": 64, "num_hidden_layers": 2, "num_heads": 4},
    "gla": {"hidden_size": 64, "num_hidden_layers": 2},
    "mmfree": {"hidden_size": 64, "num_hidden_layers": 2},
}


def rehearsal_config(family: str, vocab_size: int) -> dict:
    """The published config of ``family`` with the tiny sizes and the rehearsal vocabulary."""
    return {**PUBLISHED_CONFIGS[family], **TINY_SIZES[family], "vocab_size": int(vocab_size)}


def _fla_gla_model(config: dict):
    """fla's own GLAForCausalLM for ``config`` (None when fla is not installed or cannot build it on CPU)."""
    if importlib.util.find_spec("fla") is None:
        return None
    try:
        from fla.models import GLAConfig as FlaGLAConfig
        from fla.models import GLAForCausalLM as FlaGLAForCausalLM
    except Exception as err:  # noqa: BLE001 - a broken fla install: fall back to ours, and say so
        logger.warning("fla is installed but cannot be imported (%s); writing GLA with kernels.models", err)
        return None
    fields = {k: v for k, v in config.items() if k not in ("architectures", "model_type", "torch_dtype")}
    return FlaGLAForCausalLM(FlaGLAConfig(**fields))


def _our_model(family: str, config: dict):
    from kernels.models import causal_lm_class, config_class

    fields = {k: v for k, v in config.items() if k not in ("architectures", "model_type", "torch_dtype")}
    return causal_lm_class(family)(config_class(family)(**fields))


def write_checkpoint(directory: str | Path, family: str, tokenizer_dir: str | Path, *, seed: int = 0,
                     shard_size: str | None = None) -> dict:
    """A tiny ``family`` checkpoint in the published layout; returns what wrote it and its files.

    ``config.json`` is replaced by the recorded published fields (sizes swapped), so that the workflow
    reads the same fields a user's download holds, whatever class wrote the weights. ``shard_size``
    (e.g. ``"40KB"``) shards the weights with a ``model.safetensors.index.json``.
    """
    from kernels.tokenization import load_tokenizer

    directory, tokenizer_dir = Path(directory), Path(tokenizer_dir)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    vocab_size = len(load_tokenizer(tokenizer_dir))
    config = rehearsal_config(family, vocab_size)
    torch.manual_seed(seed)
    model = _fla_gla_model(config) if family == "gla" else None
    writer = "fla" if model is not None else "kernels"
    if model is None:
        model = _our_model(family, config)
    model = model.to(torch.bfloat16)
    options = {"max_shard_size": shard_size} if shard_size else {}
    model.save_pretrained(str(directory), safe_serialization=True, **options)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for item in tokenizer_dir.iterdir():
        shutil.copyfile(item, directory / item.name)
    for stray in ("generation_config.json",):  # not part of the published repos' weights layout
        (directory / stray).unlink(missing_ok=True)
    return {"family": family, "writer": writer, "files": sorted(p.name for p in directory.iterdir())}
