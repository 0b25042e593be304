"""Transformer++ (Llama-style) in pure PyTorch, with fla's parameter names so that fla-hub checkpoints load.

Attention runs through ``torch.nn.functional.scaled_dot_product_attention`` with a causal mask and, where
there is padding, a key-padding mask. Padding must be on the right; positions are 0..T-1 for every row.
The decode cache (``past_state``) is a list with one ``(key, value)`` pair per layer, each
``[batch, time, kv_heads, head_dim]``, after rotary; cached keys are always treated as real tokens.
Instead of that growing list, ``past_state`` may be a preallocated static cache
(:func:`kernels.models.transformer.cache.static_cache`), filled in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.activations import ACT2FN

from kernels.models.arch_rules import raise_structural_errors
from kernels.models.common import (BackboneMixin, CausalLMMixin, FamilyPreTrainedModel,
                                   SequenceClassifierMixin, mark_residual_output)
from kernels.models.transformer.cache import StaticLayerCache, cache_length
from kernels.models.transformer.configuration_transformer import TransformerConfig
from kernels.modules import RMSNorm, RotaryEmbedding, apply_rotary, intermediate_size_for


def _unsupported(config: TransformerConfig) -> None:
    if config.attnres_block_size is not None:
        raise NotImplementedError("TransformerConfig.attnres_block_size (attention residuals) is not implemented")
    raise_structural_errors("transformer_pp", config)


class TransformerMLP(nn.Module):
    """SwiGLU with a configurable activation (``hidden_act``); names gate/up/down_proj as fla."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        width = config.intermediate_size or intermediate_size_for(config.hidden_size, config.hidden_ratio or 4)
        self.gate_proj = nn.Linear(config.hidden_size, width, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, width, bias=False)
        self.down_proj = mark_residual_output(nn.Linear(width, config.hidden_size, bias=False))
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def attention_mask_for(query_len: int, key_len: int, offset: int, key_padding: torch.Tensor | None,
                       window_size: int | None, device: torch.device) -> torch.Tensor:
    """Boolean [batch or 1, 1, query, key] mask: True where query (absolute position ``offset + i``) may
    attend key ``j``. Key padding is only known for the current chunk (the cache holds real tokens)."""
    query_pos = torch.arange(offset, offset + query_len, device=device)[:, None]
    key_pos = torch.arange(key_len, device=device)[None, :]
    allowed = key_pos <= query_pos
    if window_size is not None:
        allowed = allowed & (query_pos - key_pos < window_size)
    allowed = allowed[None, None]
    if key_padding is not None:
        real = torch.ones(key_padding.shape[0], key_len, dtype=torch.bool, device=device)
        real[:, key_len - key_padding.shape[1]:] = key_padding.to(device=device, dtype=torch.bool)
        # A padding query keeps its own key so that its softmax row is never empty (no NaN).
        self_key = key_pos == query_pos
        allowed = allowed & (real[:, None, None, :] | self_key[None, None])
    return allowed


class TransformerAttention(nn.Module):
    def __init__(self, config: TransformerConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_heads
        self.num_kv_heads = config.num_kv_heads or config.num_heads
        self.head_dim = config.hidden_size // config.num_heads
        self.window_size = config.window_size
        kv_dim = self.num_kv_heads * self.head_dim
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.k_proj = nn.Linear(config.hidden_size, kv_dim, bias=config.qkv_bias)
        self.v_proj = nn.Linear(config.hidden_size, kv_dim, bias=config.qkv_bias)
        self.o_proj = mark_residual_output(nn.Linear(config.hidden_size, config.hidden_size, bias=False))
        if config.qk_norm:
            # fla's q_norm/k_norm: RMSNorm over head_dim with its default eps 1e-5.
            self.q_norm = RMSNorm(self.head_dim, eps=1e-5)
            self.k_norm = RMSNorm(self.head_dim, eps=1e-5)
        self.qk_norm = config.qk_norm
        self.rotary = RotaryEmbedding(self.head_dim, base=config.rope_theta or 10000.0)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                past: tuple[torch.Tensor, torch.Tensor] | None = None, use_cache: bool = False):
        batch, seq_len, _ = x.shape
        q = self.q_proj(x).view(batch, seq_len, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(batch, seq_len, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(batch, seq_len, self.num_kv_heads, self.head_dim)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        offset = 0 if past is None else cache_length(past)
        cos, sin = self.rotary(seq_len, offset=offset, device=x.device)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if isinstance(past, StaticLayerCache):  # preallocated: written in place, no copy of the cache per token
            k, v = past.update(k, v)
        elif past is not None:
            k = torch.cat([past[0].to(k.dtype), k], dim=1)
            v = torch.cat([past[1].to(v.dtype), v], dim=1)
        new_state = (past if isinstance(past, StaticLayerCache) else (k, v)) if use_cache else None
        o = self._attend(q, k, v, offset, attention_mask)
        return self.o_proj(o.reshape(batch, seq_len, -1)), new_state

    def _attend(self, q, k, v, offset, attention_mask):
        groups = self.num_heads // self.num_kv_heads
        if groups > 1:
            k = k.repeat_interleave(groups, dim=2)
            v = v.repeat_interleave(groups, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
        plain_causal = offset == 0 and self.window_size is None and (
            attention_mask is None or bool(attention_mask.all()))
        if plain_causal:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            mask = attention_mask_for(q.shape[2], k.shape[2], offset, attention_mask, self.window_size, q.device)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return o.transpose(1, 2)


class TransformerBlock(GradientCheckpointingLayer):  # recomputed in backward when checkpointing is on
    def __init__(self, config: TransformerConfig, layer_idx: int):
        super().__init__()
        self.attn_norm = RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.attn = TransformerAttention(config, layer_idx)
        self.mlp_norm = RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.mlp = TransformerMLP(config)

    def forward(self, hidden, attention_mask=None, past=None, use_cache=False):
        attn_out, state = self.attn(self.attn_norm(hidden), attention_mask, past, use_cache)
        hidden = hidden + attn_out
        hidden = hidden + self.mlp(self.mlp_norm(hidden))
        return hidden, state


class TransformerPreTrainedModel(FamilyPreTrainedModel):
    config_class = TransformerConfig
    config: TransformerConfig
    _no_split_modules = ["TransformerBlock"]


class TransformerModel(BackboneMixin, TransformerPreTrainedModel):
    """Backbone: ``embeddings`` -> blocks -> ``norm`` (forward in ``BackboneMixin``)."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        _unsupported(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(TransformerBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.post_init()


class TransformerForCausalLM(CausalLMMixin, TransformerPreTrainedModel):
    """Backbone ``model`` + plain ``nn.Linear`` ``lm_head``."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self.model = TransformerModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()


class TransformerForSequenceClassification(SequenceClassifierMixin, TransformerPreTrainedModel):
    """Backbone ``model`` + new ``score`` head on the last non-padding token."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self._init_classifier(TransformerModel(config), config)
        self.post_init()
