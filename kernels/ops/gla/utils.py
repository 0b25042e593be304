"""Argument checks shared by the GLA kernels (dtype rules: :mod:`kernels.ops.dtypes`).

Layout (as in fla 0.6): q, k, g are [batch, time, heads, K]; v is [batch, time, heads, V].
The recurrent state is [batch, heads, K, V] (key dimension first). fla's ``GatedLinearAttention``
layer calls its kernels with ``state_v_first=True`` and so keeps cached states as [B, H, V, K]:
transpose the last two dimensions when moving a state between that cache and these kernels.
"""

from __future__ import annotations

import torch

from ..dtypes import FLOAT_DTYPES


def _check_float(name: str, op: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: `{name}` must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: `{name}` must be a floating tensor (fp16/bf16/fp32/fp64), got {t.dtype}")


def check_gla_args(op, q, k, v, g, scale, initial_state) -> tuple[int, int, int, int, int]:
    """Validate GLA inputs; return (B, T, H, K, V). Errors name the op and the offending argument."""
    for name, t in (("q", q), ("k", k), ("v", v), ("g", g)):
        _check_float(name, op, t)
        if t.dim() != 4:
            raise ValueError(
                f"{op}: `{name}` must be 4-D [batch, time, heads, dim], got shape {tuple(t.shape)}"
            )
    if k.shape != q.shape or g.shape != q.shape:
        raise ValueError(
            f"{op}: `q`, `k` and `g` must have the same shape [batch, time, heads, K]; got "
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, g {tuple(g.shape)}"
        )
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(
            f"{op}: `v` must be [batch, time, heads, V] with the batch, time and heads of `q`; got "
            f"v {tuple(v.shape)}, q {tuple(q.shape)}"
        )
    devices = {t.device for t in (q, k, v, g)}
    if initial_state is not None:
        devices.add(initial_state.device)
    if len(devices) > 1:
        raise ValueError(f"{op}: all tensors must be on one device, got {sorted(map(str, devices))}")
    B, T, H, K = q.shape
    V = v.shape[-1]
    if initial_state is not None:
        _check_float("initial_state", op, initial_state)
        if tuple(initial_state.shape) != (B, H, K, V):
            raise ValueError(
                f"{op}: `initial_state` must be [batch, heads, K, V] = {(B, H, K, V)}, got "
                f"{tuple(initial_state.shape)} (fla's layer caches states as [B, H, V, K]: transpose it)"
            )
    if scale is not None and not isinstance(scale, (int, float)):
        raise TypeError(f"{op}: `scale` must be a number or None, got {type(scale).__name__}")
    return B, T, H, K, V


def resolve_scale(scale: float | None, K: int) -> float:
    return float(K) ** -0.5 if scale is None else float(scale)
