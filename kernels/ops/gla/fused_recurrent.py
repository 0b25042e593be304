"""GLA as a step-by-step recurrence, written for speed per step (batched matmuls over batch*heads).

This is the reference the chunked kernel is checked against, and, with T = 1, the one-token decode
step: pass the previous ``final_state`` as ``initial_state`` and ask for ``output_final_state``.
"""

from __future__ import annotations

import torch

from ..backend import count_fla_call, use_fla
from ..dtypes import autocast_off, compute_dtype
from ..fastmath import exp_base2
from .utils import check_gla_args, resolve_scale


def fused_recurrent_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """S_t = diag(exp g_t) S_{t-1} + k_t v_t^T; o_t = (scale q_t)^T S_t.

    q, k, g: [B, T, H, K]; v: [B, T, H, V]; initial_state / final state: [B, H, K, V], fp32
    (fp64 when an input is fp64). Returns (o [B, T, H, V] in v's dtype, final state or None).
    """
    B, T, H, K, V = check_gla_args("fused_recurrent_gla", q, k, v, g, scale, initial_state)
    scale = resolve_scale(scale, K)
    if use_fla(q, k, v, g, initial_state):
        return _fla_fused_recurrent_gla(q, k, v, g, scale, initial_state, output_final_state)
    with autocast_off(q.device):
        return fused_recurrent_gla_torch(q, k, v, g, scale, initial_state, output_final_state)


def fused_recurrent_gla_torch(q, k, v, g, scale, initial_state, output_final_state):
    B, T, H, K = q.shape
    V = v.shape[-1]
    dtype = compute_dtype(q, k, v, g, initial_state)

    def per_head(t: torch.Tensor, dim: int) -> torch.Tensor:  # [B, T, H, d] -> [T, B*H, d]
        return t.to(dtype).permute(1, 0, 2, 3).reshape(T, B * H, dim)

    qs = per_head(q, K) * scale
    ks = per_head(k, K)
    vs = per_head(v, V)
    # the same exp as the chunked kernel's (exp2-based), so the two differ only in the algorithm
    decays = exp_base2(per_head(g, K)).unsqueeze(-1)  # [T, B*H, K, 1]
    if initial_state is None:
        state = qs.new_zeros(B * H, K, V)
    else:
        state = initial_state.to(dtype).reshape(B * H, K, V)
    outputs = []
    # unbind, not qs[t]: indexing would give every step its own full-size gradient buffer in
    # backward (quadratic in T); unbind's backward stacks the step gradients once
    steps = zip(qs.unbind(0), ks.unbind(0), vs.unbind(0), decays.unbind(0))
    for q_t, k_t, v_t, decay_t in steps:
        # decay the old state per key channel, then add the outer product k_t v_t^T
        state = torch.baddbmm(state * decay_t, k_t.unsqueeze(-1), v_t.unsqueeze(-2))
        outputs.append(torch.bmm(q_t.unsqueeze(-2), state))  # [B*H, 1, V]
    if T:
        o = torch.cat(outputs, dim=1)  # [B*H, T, V]
    else:
        o = qs.new_zeros(B * H, 0, V)
    o = o.reshape(B, H, T, V).transpose(1, 2).to(v.dtype)
    final_state = state.reshape(B, H, K, V) if output_final_state else None
    return o, final_state


def _fla_fused_recurrent_gla(q, k, v, g, scale, initial_state, output_final_state):
    """fla 0.6's triton kernel: same argument order, [B, T, H, K] layout, fp32 [B, H, K, V] state."""
    from fla.ops.gla import fused_recurrent_gla as fla_fused_recurrent_gla

    if initial_state is not None:
        initial_state = initial_state.float()  # fla asserts an fp32 state
    o, final_state = fla_fused_recurrent_gla(
        q, k, v, gk=g, scale=scale, initial_state=initial_state, output_final_state=output_final_state
    )
    count_fla_call("fused_recurrent_gla")
    return o, (final_state.float() if final_state is not None else None)
