"""HGRN as a step-by-step recurrence (the reference for the chunked scan, and the decode step).

h_t = exp(g_t) * h_{t-1} + x_t, o_t = h_t; elementwise per channel. With T = 1 and the previous
``final_state`` as ``initial_state`` this is the one-token decode step.
"""

from __future__ import annotations

import torch

from ..backend import count_fla_call, use_fla
from ..dtypes import compute_dtype
from ..fastmath import exp_base2
from .utils import check_hgrn_args


def fused_recurrent_hgrn(
    x: torch.Tensor,
    g: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """x, g: [B, T, D] (g = log of the forget gate, <= 0); state [B, D] fp32 (fp64 for fp64 inputs).

    Returns (o [B, T, D] in x's dtype, final state or None).
    """
    check_hgrn_args("fused_recurrent_hgrn", x, g, initial_state)
    if use_fla(x, g, initial_state):
        return _fla_fused_recurrent_hgrn(x, g, initial_state, output_final_state)
    return fused_recurrent_hgrn_torch(x, g, initial_state, output_final_state)


def fused_recurrent_hgrn_torch(x, g, initial_state, output_final_state):
    B, T, D = x.shape
    dtype = compute_dtype(x, g, initial_state)
    # time-major copies so that each step reads one contiguous [B, D] slice
    xs = x.to(dtype).transpose(0, 1).contiguous()
    # the same exp as the chunked scan's (exp2-based), so the two differ only in the algorithm
    decays = exp_base2(g.to(dtype)).transpose(0, 1).contiguous()
    h = xs.new_zeros(B, D) if initial_state is None else initial_state.to(dtype)
    outputs = []
    # unbind, not xs[t]: indexing would give every step a full-size gradient buffer in backward
    for x_t, decay_t in zip(xs.unbind(0), decays.unbind(0)):
        h = torch.addcmul(x_t, decay_t, h)
        outputs.append(h)
    o = torch.stack(outputs, dim=1) if T else xs.new_zeros(B, 0, D)
    return o.to(x.dtype), (h if output_final_state else None)


def _fla_fused_recurrent_hgrn(x, g, initial_state, output_final_state):
    """fla 0.6's triton kernel. Its final state comes back in x's dtype; the contract says fp32."""
    from fla.ops.hgrn import fused_recurrent_hgrn as fla_fused_recurrent_hgrn

    o, final_state = fla_fused_recurrent_hgrn(
        x, g, initial_state=initial_state, output_final_state=output_final_state
    )
    count_fla_call("fused_recurrent_hgrn")
    if final_state is not None:
        final_state = final_state.float()
    return o, final_state
