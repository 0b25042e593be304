"""Speed of the chunked linear-recurrence kernels against their step-by-step references (CPU, fp32).

Prints human-readable lines and, as its last line, one JSON object of the measured ratios
(recurrent time / chunked time, medians of interleaved repeats, all from this run):

    gla_chunk_vs_recurrent_L1024           forward (no autograd graph), as in prefill
    gla_chunk_vs_recurrent_fwd_bwd_L1024   forward + backward, as in training
    hgrn_chunk_vs_recurrent_L1024, hgrn_chunk_vs_recurrent_fwd_bwd_L1024

Each section is a function returning a dict; ``main`` merges them, so further sections (model
throughput) can be added beside ``kernel_benchmarks``.

    python benchmarks/bench_kernels.py [--threads 1] [--repeats 7] [--seq-len 1024]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from kernels.ops.gla import chunk_gla, fused_recurrent_gla
from kernels.ops.hgrn import chunk_hgrn, fused_recurrent_hgrn

GLA_SHAPE = {"batch": 1, "heads": 4, "head_k": 64, "head_v": 64}
HGRN_SHAPE = {"batch": 1, "dim": 512}


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median wall time (ms) of each function, timing them in alternation so load drifts hit all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def forward_only(op, *inputs) -> Callable[[], object]:
    def run():
        with torch.no_grad():
            return op(*inputs)

    return run


def forward_backward(op, *inputs) -> Callable[[], object]:
    leaves = [t.detach().clone().requires_grad_() for t in inputs]

    def run():
        for t in leaves:
            t.grad = None
        o, _ = op(*leaves)
        o.sum().backward()

    return run


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def compare(label: str, key: str, seq_len: int, chunk_op, recurrent_op, inputs, repeats: int) -> dict[str, float]:
    """Check that the two kernels agree, then time forward and forward+backward."""
    with torch.no_grad():
        error = max_abs_diff(chunk_op(*inputs)[0], recurrent_op(*inputs)[0])
    print(f"{label}: max |chunk - recurrent| = {error:.2e}")
    results = {}
    for mode, make, reps in (("", forward_only, repeats), ("_fwd_bwd", forward_backward, max(3, repeats // 2))):
        ms = interleaved_medians({"chunk": make(chunk_op, *inputs), "recurrent": make(recurrent_op, *inputs)}, reps)
        ratio = ms["recurrent"] / ms["chunk"]
        name = "forward" if not mode else "forward+backward"
        print(f"{label} {name:17s}: recurrent {ms['recurrent']:8.2f} ms   chunk {ms['chunk']:7.2f} ms   "
              f"ratio {ratio:5.1f}x   (median of {reps})")
        results[f"{key}{mode}_L{seq_len}"] = round(ratio, 2)
    return results


def kernel_benchmarks(seq_len: int = 1024, repeats: int = 7, seed: int = 0) -> dict[str, float]:
    gen = torch.Generator().manual_seed(seed)
    B, H, K, V = GLA_SHAPE["batch"], GLA_SHAPE["heads"], GLA_SHAPE["head_k"], GLA_SHAPE["head_v"]
    q, k = torch.randn(B, seq_len, H, K, generator=gen), torch.randn(B, seq_len, H, K, generator=gen)
    v = torch.randn(B, seq_len, H, V, generator=gen)
    g = F.logsigmoid(torch.randn(B, seq_len, H, K, generator=gen)) / 16  # fla's GLA gate
    print(f"GLA  shapes: q, k, g [B={B}, T={seq_len}, H={H}, K={K}], v [.., V={V}]; fp32")
    results = compare("GLA ", "gla_chunk_vs_recurrent", seq_len, chunk_gla, fused_recurrent_gla, (q, k, v, g), repeats)

    B, D = HGRN_SHAPE["batch"], HGRN_SHAPE["dim"]
    x = torch.randn(B, seq_len, D, generator=gen)
    gh = F.logsigmoid(torch.randn(B, seq_len, D, generator=gen))
    print(f"HGRN shapes: x, g [B={B}, T={seq_len}, D={D}]; fp32")
    results |= compare("HGRN", "hgrn_chunk_vs_recurrent", seq_len, chunk_hgrn, fused_recurrent_hgrn, (x, gh), repeats)
    return results


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the CPU is shared)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per kernel (median reported)")
    parser.add_argument("--seq-len", type=int, default=1024)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s)")
    results: dict[str, float] = {}
    results |= kernel_benchmarks(seq_len=args.seq_len, repeats=args.repeats)
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
