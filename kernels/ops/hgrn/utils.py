"""Argument checks shared by the HGRN kernels. Layout: x, g are [batch, time, dim]; state [batch, dim]."""

from __future__ import annotations

import torch

from ..dtypes import FLOAT_DTYPES


def check_hgrn_args(op: str, x, g, initial_state) -> tuple[int, int, int]:
    """Validate HGRN inputs; return (B, T, D). Errors name the op and the offending argument."""
    for name, t in (("x", x), ("g", g)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: `{name}` must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{op}: `{name}` must be a floating tensor (fp16/bf16/fp32/fp64), got {t.dtype}")
        if t.dim() != 3:
            raise ValueError(f"{op}: `{name}` must be 3-D [batch, time, dim], got shape {tuple(t.shape)}")
    if g.shape != x.shape:
        raise ValueError(f"{op}: `x` and `g` must have the same shape, got x {tuple(x.shape)}, g {tuple(g.shape)}")
    B, T, D = x.shape
    devices = {x.device, g.device}
    if initial_state is not None:
        if not isinstance(initial_state, torch.Tensor) or initial_state.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{op}: `initial_state` must be a floating torch.Tensor")
        if tuple(initial_state.shape) != (B, D):
            raise ValueError(
                f"{op}: `initial_state` must be [batch, dim] = {(B, D)}, got {tuple(initial_state.shape)}"
            )
        devices.add(initial_state.device)
    if len(devices) > 1:
        raise ValueError(f"{op}: all tensors must be on one device, got {sorted(map(str, devices))}")
    return B, T, D
