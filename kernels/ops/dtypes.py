"""Dtype rules shared by the GLA and HGRN kernels."""

from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """fp32 accumulation for fp16/bf16/fp32 inputs; fp64 when any input is fp64 (exact tests)."""
    if any(t is not None and t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32


def autocast_off(device: torch.device):
    """A context that turns autocast off on ``device``: the pure-PyTorch kernels accumulate in
    ``compute_dtype`` as fla's triton kernels do, whatever autocast would pick for their matmuls
    (left on, bf16 products would also clash with the fp32 ``out=`` buffers of the inference path)."""
    return torch.autocast(device_type=device.type, enabled=False)
