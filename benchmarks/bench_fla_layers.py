"""Our GLA and HGRN-bit layers against fla's on a CUDA machine: same weights, same input; largest difference
of the output and of the input gradient, and forward + backward time ratios (ours / fla).

Sections (keys of the JSON object on the last line; times are medians of interleaved repeats in one run):

    gla_layer_max_abs_diff_vs_fla          our GatedLinearAttention vs fla.layers.GatedLinearAttention,
    gla_layer_grad_max_abs_diff_vs_fla     output and d(input), both with the weights of fla's layer
    gla_layer_fwd_bwd_ours_over_fla        forward + backward time, ours / fla's layer
    gla_torch_ops_over_fla_ops             our layer on our pure-PyTorch ops / on fla's triton ops (time)
    gla_torch_ops_max_abs_diff             ... and the largest output difference between the two
    hgrn_torch_ops_over_fla_ops            the same for our HGRN-bit layer (fla has no HGRN-bit layer;
    hgrn_torch_ops_max_abs_diff            its HGRN ops are what our layer calls on CUDA)
    fla_kernels                            1.0 when the "fla" runs really used fla's kernels

    python benchmarks/bench_fla_layers.py [--hidden 2048] [--seq-len 2048] [--batch 4] [--repeats 5]

Needs CUDA and fla, except for a smoke run on CPU under triton's interpreter (``--device cpu`` with
``TRITON_INTERPRET=1`` and ``--seq-len`` <= 64, where fla's layer uses its fused-recurrent kernel).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels.models.gla import GLAConfig  # noqa: E402
from kernels.models.gla.modeling_gla import GatedLinearAttention  # noqa: E402
from kernels.models.hgrn_bit import HGRNBitConfig  # noqa: E402
from kernels.models.hgrn_bit.modeling_hgrn_bit import HGRNBitAttention  # noqa: E402
from kernels.ops.backend import kernel_provenance, set_force_torch  # noqa: E402

NORM_EPS = 1e-6


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fwd_bwd(layer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and d(sum of output)/d(input) of one forward + backward pass."""
    x = x.detach().requires_grad_(True)
    out = layer(x)
    out = out[0] if isinstance(out, tuple) else out
    out.float().sum().backward()
    return out.detach(), x.grad.detach()


def median_time(fn, device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(ours, theirs, x: torch.Tensor, repeats: int, device: torch.device) -> dict[str, float]:
    """Max |difference| of output and input gradient, and ours/theirs fwd+bwd time (interleaved)."""
    out_a, grad_a = fwd_bwd(ours, x)
    out_b, grad_b = fwd_bwd(theirs, x)
    ratios = []
    for _ in range(repeats):
        ratios.append(median_time(lambda: fwd_bwd(ours, x), device, 1)
                      / median_time(lambda: fwd_bwd(theirs, x), device, 1))
    return {"max_abs_diff": float((out_a.float() - out_b.float()).abs().max()),
            "grad_max_abs_diff": float((grad_a.float() - grad_b.float()).abs().max()),
            "time_ratio": statistics.median(ratios)}


class ForcedOps(torch.nn.Module):
    """A layer run with our pure-PyTorch ops forced (``force``) or with the dispatch's own choice."""

    def __init__(self, layer: torch.nn.Module, force: bool):
        super().__init__()
        self.layer, self.force = layer, force

    def forward(self, x):
        set_force_torch(self.force)
        try:
            return self.layer(x)
        finally:
            set_force_torch(None)


def gla_layers(hidden: int, device: torch.device, dtype: torch.dtype):
    from fla.layers import GatedLinearAttention as FlaGLA

    theirs = FlaGLA(mode="chunk", hidden_size=hidden, num_heads=4, expand_k=0.5, expand_v=1.0,
                    norm_eps=NORM_EPS, fuse_norm=True, layer_idx=0)
    ours = GatedLinearAttention(GLAConfig(hidden_size=hidden, num_heads=4, expand_k=0.5, expand_v=1.0,
                                          norm_eps=NORM_EPS, fuse_norm=True), layer_idx=0)
    ours.load_state_dict(theirs.state_dict(), strict=True)  # same parameter names as fla
    return ours.to(device, dtype), theirs.to(device, dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_fla_layers: --device cuda but CUDA is not available")
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.seq_len, args.hidden, device=device, dtype=dtype)
    provenance = kernel_provenance(device)
    print(f"device {device}, dtype {args.dtype}, B={args.batch} T={args.seq_len} d={args.hidden}; {provenance}")

    ours, theirs = gla_layers(args.hidden, device, dtype)
    layer = compare(ours, theirs, x, args.repeats, device)
    print(f"GLA layer, ours vs fla's: {layer}")
    gla_ops = compare(ForcedOps(ours, True), ForcedOps(ours, False), x, args.repeats, device)
    print(f"GLA layer, our torch ops vs dispatched ({provenance['kernels']}) ops: {gla_ops}")
    hgrn = HGRNBitAttention(HGRNBitConfig(hidden_size=args.hidden, rms_norm_eps=NORM_EPS), layer_idx=0)
    hgrn = hgrn.to(device, dtype)
    hgrn_ops = compare(ForcedOps(hgrn, True), ForcedOps(hgrn, False), x, args.repeats, device)
    print(f"HGRN-bit layer, our torch ops vs dispatched ({provenance['kernels']}) ops: {hgrn_ops}")
    print(json.dumps({
        "gla_layer_max_abs_diff_vs_fla": layer["max_abs_diff"],
        "gla_layer_grad_max_abs_diff_vs_fla": layer["grad_max_abs_diff"],
        "gla_layer_fwd_bwd_ours_over_fla": layer["time_ratio"],
        "gla_torch_ops_over_fla_ops": gla_ops["time_ratio"],
        "gla_torch_ops_max_abs_diff": gla_ops["max_abs_diff"],
        "hgrn_torch_ops_over_fla_ops": hgrn_ops["time_ratio"],
        "hgrn_torch_ops_max_abs_diff": hgrn_ops["max_abs_diff"],
        "fla_kernels": 1.0 if provenance["kernels"] == "fla" else 0.0,
    }))


if __name__ == "__main__":
    main()
