"""Published ``config.json`` fields of the checkpoints the paper and zoo configs name, with where each was
read (this machine cannot reach the hub: every record below was read from a stored copy of the hub page
named in ``source``; nothing is filled in from a library's defaults).

- The paper's three (``fla-hub/transformer-1.3B-100B``, ``fla-hub/gla-1.3B-100B``, ``ridger/MMfreeLM-1.3B``):
  :data:`kernels.rehearsal.checkpoints.PUBLISHED_CONFIGS`.
- The fla-hub 1.3B-100B zoo (SlimPajama, 100B tokens, the same recipe as the paper's Transformer++ and GLA):
  :data:`ZOO_CONFIGS`. ``revision`` is the commit of the stored copy where the page names one; where the
  repository's ``main`` moved on after it, ``note`` says so. ``fla-hub/gsa-1.3B-100B``: no stored copy of its
  config.json could be found (:data:`UNREAD`), so it has no record; the disk and compute plans list it as not
  counted instead of guessing.

The records keep every field as published (old field names of 2024 fla releases included: fla 0.6's config
classes take unknown keywords and ignore them), so the rehearsal's tiny checkpoints carry what a download
holds, with only the sizes swapped (:data:`ZOO_TINY_SIZES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Published:
    hub_id: str
    family: str                  # the family that loads it (kernels.families)
    config: dict[str, Any]
    source: str                  # the stored page the fields were read from
    revision: str | None = None  # the commit of that page, when it names one
    note: str | None = None
    label: str = ""
    tiny: dict[str, Any] = field(default_factory=dict)  # the rehearsal's sizes (every structural rule kept)


_RETNET = {
    "architectures": ["RetNetForCausalLM"], "attn_mode": "fused_chunk", "bos_token_id": 1, "conv_size": 4,
    "elementwise_affine": True, "eos_token_id": 2, "expand_k": 1, "expand_v": 2, "feature_map": None,
    "fuse_cross_entropy": True, "fuse_norm": True, "hidden_act": "swish", "hidden_ratio": 2, "hidden_size": 2048,
    "initializer_range": 0.02, "intermediate_size": None, "max_position_embeddings": 2048, "model_type": "retnet",
    "norm_eps": 1e-06, "num_heads": 8, "num_hidden_layers": 24, "num_kv_heads": None, "rms_norm_eps": 1e-06,
    "share_conv_kernel": True, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.2", "use_cache": True, "use_output_gate": True, "use_short_conv": False,
    "vocab_size": 32000,
}
_HGRN = {
    "architectures": ["HGRNForCausalLM"], "attn": None, "attn_mode": "fused_recurrent", "bos_token_id": 1,
    "conv_size": 4, "elementwise_affine": True, "eos_token_id": 2, "expand_ratio": 1, "fuse_cross_entropy": True,
    "fuse_norm": True, "hidden_act": "swish", "hidden_ratio": 4, "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": None, "max_position_embeddings": 2048, "model_type": "hgrn", "norm_eps": 1e-06,
    "num_heads": 1, "num_hidden_layers": 24, "pad_token_id": 2, "share_conv_kernel": True,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.48.2", "use_cache": True,
    "use_lower_bound": True, "use_short_conv": False, "vocab_size": 32000,
}
_HGRN2 = {
    "architectures": ["HGRN2ForCausalLM"], "attn_mode": "fused_chunk", "bos_token_id": 1, "clamp_min": None,
    "conv_size": 4, "eos_token_id": 2, "expand_ratio": 128, "fuse_cross_entropy": True, "hidden_act": "swish",
    "hidden_ratio": 4, "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": None,
    "max_position_embeddings": 2048, "model_type": "hgrn2", "num_heads": None, "num_hidden_layers": 24,
    "rms_norm_eps": 1e-06, "share_conv_kernel": True, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.0.dev0", "use_cache": True, "use_lower_bound": True, "use_short_conv": False,
    "vocab_size": 32000,
}
_DELTA_NET = {
    "architectures": ["DeltaNetForCausalLM"], "attn": None, "attn_mode": "chunk", "bos_token_id": 1, "conv_size": 4,
    "eos_token_id": 2, "expand_k": 1, "expand_v": 1, "fuse_cross_entropy": True, "hidden_act": "swish",
    "hidden_ratio": 4, "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": None,
    "max_position_embeddings": 2048, "model_type": "delta_net", "norm_eps": 1e-06, "norm_first": False,
    "num_heads": 16, "num_hidden_layers": 24, "pad_token_id": 2, "qk_activation": "silu", "qk_norm": "l2",
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.45.2", "use_beta": True,
    "use_cache": True, "use_gate": False, "use_output_norm": True, "use_short_conv": True, "vocab_size": 32000,
}
_MAMBA = {
    "architectures": ["MambaForCausalLM"], "bos_token_id": 0, "conv_kernel": 4, "eos_token_id": 0, "expand": 2,
    "fuse_cross_entropy": True, "fuse_norm": True, "hidden_act": "silu", "hidden_size": 2048,
    "initializer_range": 0.1, "intermediate_size": 4096, "layer_norm_epsilon": 1e-05, "model_type": "mamba",
    "num_hidden_layers": 48, "pad_token_id": None, "rescale_prenorm_residual": False, "residual_in_fp32": False,
    "state_size": 16, "time_step_floor": 0.0001, "time_step_init_scheme": "random", "time_step_max": 0.1,
    "time_step_min": 0.001, "time_step_rank": 128, "time_step_scale": 1.0, "torch_dtype": "bfloat16",
    "transformers_version": "4.39.3", "use_bias": False, "use_cache": True, "use_conv_bias": True,
    "vocab_size": 32000,
}

ZOO = (
    Published("fla-hub/retnet-1.3B-100B", "fla", _RETNET, label="RetNet 1.3B",
              source="https://huggingface.co/fla-hub/retnet-1.3B-100B/blob/main/config.json",
              note="main as stored (the stored file listing shows main at 206c85c, 'Update config.json', 849 bytes)",
              tiny={"hidden_size": 64, "num_hidden_layers": 2, "num_heads": 2}),
    Published("fla-hub/hgrn-1.3B-100B", "fla", _HGRN, label="HGRN 1.3B",
              source="https://huggingface.co/fla-hub/hgrn-1.3B-100B/blame/main/config.json",
              note="main as stored (805 bytes, last commit 1adad50)",
              tiny={"hidden_size": 64, "num_hidden_layers": 2}),
    Published("fla-hub/hgrn2-1.3B-100B", "fla", _HGRN2, label="HGRN2 1.3B", revision="46b2dbe98b7e4608d47fc28cf701ec1a8156b963",
              source="https://huggingface.co/fla-hub/hgrn2-1.3B-100B/commit/46b2dbe98b7e4608d47fc28cf701ec1a8156b963",
              note="the 2024-04-16 upload (31 lines); main was updated by 2f413dd (config.json 834 bytes), whose "
                   "fields could not be read: pin revision 46b2dbe for exactly these",
              tiny={"hidden_size": 64, "num_hidden_layers": 2, "expand_ratio": 16}),
    Published("fla-hub/delta_net-1.3B-100B", "fla", _DELTA_NET, label="DeltaNet 1.3B",
              revision="1a918d7184f77b197165c4dd10958c95f82e68fe",
              source="https://huggingface.co/fla-hub/delta_net-1.3B-100B/raw/1a918d7184f77b197165c4dd10958c95f82e68fe/config.json",
              note="the 2024-11-27 upload (852 bytes); main is b4dcbba ('Fix weight mismatch', config.json 850 bytes), "
                   "whose fields could not be read: pin revision 1a918d7 for exactly these",
              tiny={"hidden_size": 64, "num_hidden_layers": 2, "num_heads": 2}),
    Published("fla-hub/mamba-1.3B-100B", "fla", _MAMBA, label="Mamba 1.3B (fla)",
              revision="1493d4075bea35be0b4bfe36760d38bf0edc566e",
              source="https://huggingface.co/fla-hub/mamba-1.3B-100B/blob/1493d4075bea35be0b4bfe36760d38bf0edc566e/config.json",
              tiny={"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "time_step_rank": 4}),
)
# The same fla-hub Mamba checkpoint read by transformers' own MambaModel (family: hf): its parameter names are
# transformers' (fla's Mamba was written from transformers' and keeps its names: tests check the two agree).
ZOO_HF = (
    Published("fla-hub/mamba-1.3B-100B", "hf", _MAMBA, label="Mamba 1.3B (transformers)",
              revision="1493d4075bea35be0b4bfe36760d38bf0edc566e", source=ZOO[-1].source, tiny=ZOO[-1].tiny),
)
UNREAD = {"fla-hub/gsa-1.3B-100B": "no stored copy of its config.json was found (only the 2.7B and 7B GSA "
                                   "configs were); gsa-1.3B-100B is not counted in the disk and compute plans"}
ZOO_CONFIGS = {p.hub_id: p for p in ZOO}


def paper_records() -> dict[str, Published]:
    from kernels.rehearsal.checkpoints import PUBLISHED_CONFIGS

    hubs = {"transformer_pp": "fla-hub/transformer-1.3B-100B", "gla": "fla-hub/gla-1.3B-100B",
            "mmfree": "ridger/MMfreeLM-1.3B"}
    return {hub: Published(hub, family, PUBLISHED_CONFIGS[family], source="kernels/rehearsal/checkpoints.py")
            for family, hub in hubs.items()}


def published_config(hub_id: str, family: str | None = None) -> dict[str, Any]:
    """The recorded fields of ``hub_id`` (loaded by ``family``); KeyError naming what is recorded otherwise."""
    records = [*paper_records().values(), *ZOO, *ZOO_HF]
    for record in records:
        if record.hub_id == hub_id and (family is None or record.family == family):
            return dict(record.config)
    why = UNREAD.get(hub_id, "not recorded")
    raise KeyError(f"no published config recorded for {hub_id!r}"
                   + (f" (family {family!r})" if family else "") + f": {why}; recorded: "
                   + ", ".join(sorted({r.hub_id for r in records})))


__all__ = ["Published", "ZOO", "ZOO_HF", "ZOO_CONFIGS", "UNREAD", "paper_records", "published_config"]
