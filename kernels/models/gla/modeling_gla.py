"""Gated Linear Attention Transformer in pure PyTorch, with fla 0.6's parameter names.

Token mixer (fla's ``GatedLinearAttention``): q, k, v, g projections, a low-rank forget gate
``gk = gk_proj.1(gk_proj.0(x))`` turned into a log decay ``logsigmoid(gk) / gate_logit_normalizer``,
the recurrence ``S_t = diag(exp a_t) S_{t-1} + k_t v_t^T``, ``o_t = (K^-1/2 q_t)^T S_t`` (kernels.ops.gla:
chunked for sequences, recurrent for single decode steps), a per-head RMSNorm over V (one weight shared by
the heads), times swish(g), then ``o_proj``.

Padding (right padding): padded positions get k = 0 and a = 0, so they leave the recurrent state untouched
and the returned state is the one after each row's last real token (fla drops them by unpadding).
The decode state (``past_state``) is a list with one fp32 ``[batch, heads, K, V]`` tensor per layer.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.activations import ACT2FN

from kernels.models.arch_rules import raise_structural_errors
from kernels.models.common import (BackboneMixin, CausalLMMixin, FamilyPreTrainedModel,
                                   SequenceClassifierMixin, mark_residual_output, padding_keep_mask)
from kernels.models.gla.configuration_gla import GLAConfig
from kernels.modules import GatedMLP, RMSNorm, intermediate_size_for, rms_norm
from kernels.ops.gla import chunk_gla, fused_recurrent_gla


def _check_supported(config: GLAConfig) -> None:
    unsupported = {"use_short_conv": (config.use_short_conv, False), "attn": (config.attn, None),
                   "attnres_block_size": (config.attnres_block_size, None)}
    for field, (value, default) in unsupported.items():
        if value != default:
            raise NotImplementedError(f"GLAConfig.{field}={value!r} is not implemented here (only {default!r})")
    raise_structural_errors("gla", config)


class GatedLinearAttention(nn.Module):
    def __init__(self, config: GLAConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        d = config.hidden_size
        self.num_heads = config.num_heads
        self.num_kv_heads = config.num_kv_heads or config.num_heads
        self.num_kv_groups = self.num_heads // self.num_kv_heads
        self.key_dim = round(d * config.expand_k)
        self.value_dim = round(d * config.expand_v)
        self.head_k_dim = self.key_dim // self.num_heads
        self.head_v_dim = self.value_dim // self.num_heads
        self.gate_logit_normalizer = config.gate_logit_normalizer
        self.clamp_min = config.clamp_min
        self.norm_eps = config.norm_eps
        self.feature_map_fn = ACT2FN[config.feature_map] if config.feature_map is not None else None
        self.use_output_gate = config.use_output_gate

        self.q_proj = nn.Linear(d, self.key_dim, bias=False)
        self.k_proj = nn.Linear(d, self.key_dim // self.num_kv_groups, bias=False)
        self.v_proj = nn.Linear(d, self.value_dim // self.num_kv_groups, bias=False)
        if self.use_output_gate:
            self.g_proj = nn.Linear(d, self.value_dim, bias=False)
        self.gk_proj = nn.Sequential(nn.Linear(d, config.gate_low_rank_dim, bias=False),
                                     nn.Linear(config.gate_low_rank_dim, self.key_dim // self.num_kv_groups,
                                               bias=True))
        self.o_proj = mark_residual_output(nn.Linear(self.value_dim, d, bias=False))
        # fla names the output norm by whether it is fused with the swish gate.
        self.fuse_norm_and_gate = bool(config.fuse_norm and self.use_output_gate and config.hidden_act == "swish")
        norm = RMSNorm(self.head_v_dim, eps=config.norm_eps)
        if self.fuse_norm_and_gate:
            self.g_norm_swish_gate = norm
        else:
            self.g_norm = norm
        self.gate_fn = ACT2FN[config.hidden_act]

    def _heads(self, x: torch.Tensor, head_dim: int) -> torch.Tensor:
        """[B, T, n*head_dim] -> [B, T, H, head_dim], repeating kv heads for grouped queries as fla."""
        x = x.view(*x.shape[:2], -1, head_dim)
        if x.shape[2] != self.num_heads:
            x = x.repeat_interleave(self.num_kv_groups, dim=2)
        return x

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                past: torch.Tensor | None = None, use_cache: bool = False):
        q = self._heads(self.q_proj(x), self.head_k_dim)
        k = self._heads(self.k_proj(x), self.head_k_dim)
        v = self._heads(self.v_proj(x), self.head_v_dim)
        gk = self._heads(self.gk_proj(x), self.head_k_dim)
        log_decay = F.logsigmoid(gk.float()) / self.gate_logit_normalizer
        if self.clamp_min is not None:
            log_decay = log_decay.clamp_min(self.clamp_min)
        if self.feature_map_fn is not None:
            q, k = self.feature_map_fn(q), self.feature_map_fn(k)
        keep = padding_keep_mask(attention_mask, k)
        if keep is not None:
            k = k * keep.unsqueeze(-1)
            log_decay = log_decay * keep.unsqueeze(-1).to(log_decay.dtype)
        # Single decode steps use the step kernel; sequences the chunked one (same math).
        kernel = fused_recurrent_gla if x.shape[1] == 1 else chunk_gla
        o, state = kernel(q, k, v, log_decay.to(q.dtype), initial_state=past, output_final_state=use_cache)
        return self.o_proj(self._gate(o.to(x.dtype), x)), state

    def _gate(self, o: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        norm = self.g_norm_swish_gate if self.fuse_norm_and_gate else self.g_norm
        o = rms_norm(o, norm.weight, self.norm_eps).flatten(-2)
        if self.use_output_gate:
            o = o * self.gate_fn(self.g_proj(x))
        return o


class GLABlock(GradientCheckpointingLayer):  # recomputed in backward when checkpointing is on
    def __init__(self, config: GLAConfig, layer_idx: int):
        super().__init__()
        self.attn_norm = RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.attn = GatedLinearAttention(config, layer_idx)
        self.mlp_norm = RMSNorm(config.hidden_size, eps=config.norm_eps)
        width = config.intermediate_size or intermediate_size_for(config.hidden_size, config.hidden_ratio or 4)
        self.mlp = GatedMLP(config.hidden_size, width)
        mark_residual_output(self.mlp.down_proj)

    def forward(self, hidden, attention_mask=None, past=None, use_cache=False):
        attn_out, state = self.attn(self.attn_norm(hidden), attention_mask, past, use_cache)
        hidden = hidden + attn_out
        hidden = hidden + self.mlp(self.mlp_norm(hidden))
        return hidden, state


class GLAPreTrainedModel(FamilyPreTrainedModel):
    config_class = GLAConfig
    config: GLAConfig
    _no_split_modules = ["GLABlock"]


class GLAModel(BackboneMixin, GLAPreTrainedModel):
    """Backbone: ``embeddings`` -> blocks -> ``norm`` (forward in ``BackboneMixin``)."""

    def __init__(self, config: GLAConfig):
        super().__init__(config)
        _check_supported(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(GLABlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.post_init()


class GLAForCausalLM(CausalLMMixin, GLAPreTrainedModel):
    """Backbone ``model`` + plain ``nn.Linear`` ``lm_head``."""

    def __init__(self, config: GLAConfig):
        super().__init__(config)
        self.model = GLAModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()


class GLAForSequenceClassification(SequenceClassifierMixin, GLAPreTrainedModel):
    """Backbone ``model`` + new ``score`` head on the last non-padding token."""

    def __init__(self, config: GLAConfig):
        super().__init__(config)
        self._init_classifier(GLAModel(config), config)
        self.post_init()
