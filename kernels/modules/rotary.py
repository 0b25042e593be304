from __future__ import annotations

import torch
from torch import nn


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Non-interleaved ("rotate half") rotary embedding, the convention of fla and HF Llama.

    ``x``: [batch, time, heads, head_dim]; ``cos``/``sin``: [time, head_dim] (or broadcastable).
    """
    cos = cos[None, :, None, :].to(x.dtype) if cos.dim() == 2 else cos.to(x.dtype)
    sin = sin[None, :, None, :].to(x.dtype) if sin.dim() == 2 else sin.to(x.dtype)
    return x * cos + _rotate_half(x) * sin


class RotaryEmbedding(nn.Module):
    """Produces cos/sin tables for absolute positions ``offset .. offset + seq_len - 1``."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        self.dim = dim
        self.base = base
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, seq_len: int, offset: int = 0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        device = device or self.inv_freq.device
        positions = torch.arange(offset, offset + seq_len, device=device, dtype=torch.float32)
        freqs = torch.outer(positions, self.inv_freq.to(device))
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()
