"""The plainest HGRN recurrence: h_t = exp(g_t) * h_{t-1} + x_t, o_t = h_t, one token at a time."""

from __future__ import annotations

import torch

from ..dtypes import compute_dtype
from .utils import check_hgrn_args


def naive_recurrent_hgrn(
    x: torch.Tensor,
    g: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    B, T, D = check_hgrn_args("naive_recurrent_hgrn", x, g, initial_state)
    dtype = compute_dtype(x, g, initial_state)
    out_dtype = x.dtype
    x, g = x.to(dtype), g.to(dtype)
    h = x.new_zeros(B, D) if initial_state is None else initial_state.to(dtype)
    outputs = []
    for t in range(T):
        h = g[:, t].exp() * h + x[:, t]
        outputs.append(h)
    o = torch.stack(outputs, dim=1) if T else x.new_zeros(B, 0, D)
    return o.to(out_dtype), (h if output_final_state else None)
