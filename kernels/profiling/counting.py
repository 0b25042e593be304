"""Counting the FLOPs of a step with torch's ``FlopCounterMode`` (for families without an analytic formula).

torch's counter has formulas for matmuls, convolutions and the CUDA attention kernels, but not for the CPU
flash-attention kernel that ``scaled_dot_product_attention`` runs on CPU: without it a CPU count would leave
the attention out. :func:`flop_counter` adds it, with torch's own SDPA formulas (forward and backward), so a
count means the same on CPU and CUDA: every matmul and attention that runs through torch (a causal attention is
counted in full, as torch counts it), none that a triton kernel runs.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count


def _cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _cpu_attention_formulas() -> dict:
    ops = torch.ops.aten
    formulas = {}
    if hasattr(ops, "_scaled_dot_product_flash_attention_for_cpu"):
        formulas[ops._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa
    if hasattr(ops, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        formulas[ops._scaled_dot_product_flash_attention_for_cpu_backward] = _cpu_sdpa_backward
    return formulas


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode that also counts the CPU attention kernel."""
    return FlopCounterMode(display=False, custom_mapping=_cpu_attention_formulas())


__all__ = ["flop_counter"]
