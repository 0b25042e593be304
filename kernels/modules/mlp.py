from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def intermediate_size_for(hidden_size: int, hidden_ratio: float = 4) -> int:
    """fla's SwiGLU width: 2/3 of ``hidden_ratio * d``, rounded up to a multiple of 256."""
    raw = int(hidden_size * hidden_ratio * 2 / 3)
    return 256 * ((raw + 255) // 256)


class GatedMLP(nn.Module):
    """SwiGLU channel mixer: ``down(silu(gate(x)) * up(x))``; names as fla's ``GatedMLP``."""

    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
