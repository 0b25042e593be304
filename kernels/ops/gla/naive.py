"""The plainest GLA recurrence: one token at a time, written as the formula reads.

S_t = diag(exp g_t) S_{t-1} + k_t v_t^T,    o_t = (scale * q_t)^T S_t

Kept deliberately simple so that it can serve as the ground truth for the faster kernels.
"""

from __future__ import annotations

import torch

from ..dtypes import compute_dtype
from .utils import check_gla_args, resolve_scale


def naive_recurrent_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    B, T, H, K, V = check_gla_args("naive_recurrent_gla", q, k, v, g, scale, initial_state)
    scale = resolve_scale(scale, K)
    dtype = compute_dtype(q, k, v, g, initial_state)
    q, k, v, g = (t.to(dtype) for t in (q, k, v, g))
    if initial_state is None:
        state = q.new_zeros(B, H, K, V)
    else:
        state = initial_state.to(dtype)
    outputs = []
    for t in range(T):
        decay = g[:, t].exp()  # [B, H, K]
        kv = k[:, t, :, :, None] * v[:, t, :, None, :]  # [B, H, K, V]
        state = decay[..., None] * state + kv
        outputs.append(((q[:, t] * scale)[..., None] * state).sum(-2))  # [B, H, V]
    if T:
        o = torch.stack(outputs, dim=1)
    else:
        o = v.new_zeros(B, 0, H, V, dtype=dtype)
    return o.to(v.dtype), (state if output_final_state else None)
