"""The device's measured dense matmul peak, the denominator of MFU (model FLOPs utilisation).

Vendor peak numbers assume every core at full clock and the widest vector units; what a model can get
on this machine, with this dtype and this many threads, is better bounded by what the BLAS library
itself reaches on large square matrix products. So the peak is measured: square ``n x n`` products
for a few sizes ``n``, each timed several times after a warm-up, and the peak is the best rate of all,
``2 n^3 / time`` (one multiply-accumulate = 2 FLOPs, as in :mod:`kernels.profiling.flops`).

CPU samples are timed on the host clock, one product each (the smallest size takes well over the
timer's resolution). CUDA samples are a few back-to-back products between two CUDA events, read after
synchronising, so that launch latency does not count against the device.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

# CPU: large enough to leave the cache-blocking sweet spot covered, small enough to stay fast on one core.
CPU_SIZES = (256, 512, 1024)
# GPU: tensor cores reach their peak only on large products.
CUDA_SIZES = (2048, 4096, 8192)
CUDA_PRODUCTS_PER_SAMPLE = 5


def default_sizes(device: torch.device) -> tuple[int, ...]:
    return CUDA_SIZES if device.type == "cuda" else CPU_SIZES


@contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    # The peak must be taken with the thread count the measured points use; restore it afterwards.
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _best_seconds_cpu(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return best


def _best_seconds_cuda(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        torch.mm(a, b, out=out)
    torch.cuda.synchronize(a.device)
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(CUDA_PRODUCTS_PER_SAMPLE):
            torch.mm(a, b, out=out)
        end.record()
        torch.cuda.synchronize(a.device)
        best = min(best, start.elapsed_time(end) / 1e3 / CUDA_PRODUCTS_PER_SAMPLE)
    return best


def matmul_gflops(n: int, device: torch.device, dtype: torch.dtype, warmup: int, repeats: int) -> float:
    """Best rate (GFLOP/s) of an ``n x n`` by ``n x n`` product over ``repeats`` timed runs."""
    generator = torch.Generator().manual_seed(n)
    a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    timer = _best_seconds_cuda if device.type == "cuda" else _best_seconds_cpu
    seconds = timer(a, b, out, warmup, repeats)
    return 2.0 * n**3 / seconds / 1e9


def measure_matmul_peak_gflops(device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32",
                               threads: int | None = None, sizes: Sequence[int] | None = None,
                               warmup: int = 2, repeats: int = 10) -> float:
    """The measured dense matmul peak in GFLOP/s on ``device`` with ``dtype`` and ``threads`` (module docstring).

    ``threads=None`` keeps torch's current thread count. Always positive and finite."""
    device = torch.device(device)
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    sizes = tuple(sizes) if sizes is not None else default_sizes(device)
    if not sizes or any(int(n) <= 0 for n in sizes):
        raise ValueError(f"matmul peak sizes must be positive integers, got {sizes!r}")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"matmul peak needs repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    with _threads(threads):
        rates = [matmul_gflops(int(n), device, dtype, warmup, repeats) for n in sizes]
    return max(rates)
