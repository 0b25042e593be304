"""Speed of the chunked linear-recurrence kernels against their step-by-step references (CPU, fp32).

Prints human-readable lines and, as its last line, one JSON object of the measured ratios
(recurrent time / chunked time, medians of interleaved repeats, all from this run):

    gla_chunk_vs_recurrent_L1024           forward (no autograd graph), as in prefill
    gla_chunk_vs_recurrent_fwd_bwd_L1024   forward + backward, as in training
    gla_recurrent_vs_chunk_matmuls_only_L1024
                                           recurrent time / time of the chunked form's matmuls
                                           alone: the most the chunked form could reach here
    hgrn_chunk_vs_recurrent_L1024, hgrn_chunk_vs_recurrent_fwd_bwd_L1024

and, for each model of the config (tiny from-scratch classifiers, vocab 4096, 2 labels):

    train_tokens_per_s_L512_<model>           forward + backward tokens per second at L = 512
    decode_state_growth_2048_vs_128_<model>   bytes of the backbone's decode state after a prefill
                                              of 2048 tokens / after 128 tokens (1.0: constant
                                              state, GLA / HGRN; 16.0: a KV cache growing with L)
    decode_state_bytes_L2048_<model>          the bytes after 2048 tokens

Each section is a function returning a dict; ``main`` merges them.

    python benchmarks/bench_kernels.py [--threads 1] [--repeats 7] [--seq-len 1024]
        [--config config/config.yaml] [--model-seq-len 512] [--model-batch 2]
        [--model-repeats 3] [--skip-models]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml

from kernels.ops.gla import chunk_gla, fused_recurrent_gla
from kernels.ops.gla.chunk import CHUNK_SIZE as GLA_CHUNK_SIZE
from kernels.ops.hgrn import chunk_hgrn, fused_recurrent_hgrn

GLA_SHAPE = {"batch": 1, "heads": 4, "head_k": 64, "head_v": 64}
HGRN_SHAPE = {"batch": 1, "dim": 512}
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
MODEL_VOCAB_SIZE = 4096
DECODE_LENGTHS = (128, 2048)


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
    results |= gla_matmul_ceiling(seq_len, (q, k, v, g), repeats, gen)

    B, D = HGRN_SHAPE["batch"], HGRN_SHAPE["dim"]
    x = torch.randn(B, seq_len, D, generator=gen)
    gh = F.logsigmoid(torch.randn(B, seq_len, D, generator=gen))
    print(f"HGRN shapes: x, g [B={B}, T={seq_len}, D={D}]; fp32")
    results |= compare("HGRN", "hgrn_chunk_vs_recurrent", seq_len, chunk_hgrn, fused_recurrent_hgrn, (x, gh), repeats)
    return results


def gla_matmul_ceiling(seq_len: int, inputs, repeats: int, gen: torch.Generator) -> dict[str, float]:
    """How fast the chunked form could be here: its four batched matmuls per head alone.

    Same shapes as the fast path (chunks of CHUNK_SIZE, one bmm per head for q k^T, A v, the state update
    k^T v and the read-out q S), on contiguous operands, nothing else. recurrent / this time is the ratio
    the chunked kernel would reach if all its other work were free.
    """
    B, H, K, V = GLA_SHAPE["batch"], GLA_SHAPE["heads"], GLA_SHAPE["head_k"], GLA_SHAPE["head_v"]
    C = GLA_CHUNK_SIZE
    BN = B * -(-seq_len // C)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    heads = [(rand(BN, C, K), rand(BN, K, C), rand(BN, C, V), rand(BN, K, V)) for _ in range(H)]

    def matmuls():
        for q_h, k_t, v_h, state in heads:
            attention = torch.bmm(q_h, k_t)
            torch.bmm(attention, v_h)
            torch.bmm(k_t, v_h)
            torch.bmm(q_h, state)

    ms = interleaved_medians({"recurrent": forward_only(fused_recurrent_gla, *inputs), "matmuls": matmuls}, repeats)
    ceiling = ms["recurrent"] / ms["matmuls"]
    print(f"GLA  matmuls alone    : {ms['matmuls']:7.2f} ms   (chunks of {C}): the chunked form's ceiling here is "
          f"{ceiling:.1f}x over recurrent")
    return {f"gla_recurrent_vs_chunk_matmuls_only_L{seq_len}": round(ceiling, 2)}


def load_model_archs(config_path: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """{model name: (family, arch)} from the ``models`` section of a workflow config."""
    with open(config_path) as handle:
        config = yaml.safe_load(handle)
    models = config.get("models") if isinstance(config, dict) else None
    if not isinstance(models, dict) or not models:
        raise ValueError(f"{config_path}: `models` must be a non-empty mapping of model name -> settings")
    archs = {}
    for name, entry in models.items():
        if not isinstance(entry, dict) or "family" not in entry or not isinstance(entry.get("arch"), dict):
            raise ValueError(f"{config_path}: `models.{name}` needs a `family` and an `arch` mapping")
        archs[name] = (entry["family"], entry["arch"])
    return archs


def build_model(family: str, arch: dict[str, Any]) -> torch.nn.Module:
    # any registered family (kernels.families), so a config with generic models benchmarks them too
    from kernels.families import family as family_named

    return family_named(family).build(arch, vocab_size=MODEL_VOCAB_SIZE, num_labels=2, pad_token_id=0, seed=0)


def train_tokens_per_second(model: torch.nn.Module, seq_len: int, batch: int, repeats: int) -> float:
    """Forward + backward of the classification loss on random tokens; median over repeats."""
    gen = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, MODEL_VOCAB_SIZE, (batch, seq_len), generator=gen)
    labels = torch.randint(0, 2, (batch,), generator=gen)
    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        model(input_ids, labels=labels).loss.backward()

    ms = interleaved_medians({"step": step}, repeats)["step"]
    return batch * seq_len / (ms / 1e3)


@torch.no_grad()
def decode_state_bytes(model: torch.nn.Module, seq_len: int) -> int:
    """Bytes of the backbone's cached state after prefilling ``seq_len`` tokens (what decoding carries)."""
    model.eval()
    input_ids = torch.randint(1, MODEL_VOCAB_SIZE, (1, seq_len), generator=torch.Generator().manual_seed(2))
    from kernels.families import family_of_model

    family = family_of_model(model)
    _, state = family.decode_forward(family.backbone(model), input_ids, None, 0)
    return family.state_nbytes(state)


def model_benchmarks(config_path: Path = DEFAULT_CONFIG, seq_len: int = 512, batch: int = 2,
                     repeats: int = 3) -> dict[str, float]:
    results: dict[str, float] = {}
    short, long = DECODE_LENGTHS
    for name, (family, arch) in load_model_archs(config_path).items():
        model = build_model(family, arch)
        params = sum(p.numel() for p in model.parameters())
        tokens_per_s = train_tokens_per_second(model, seq_len, batch, repeats)
        state_short, state_long = decode_state_bytes(model, short), decode_state_bytes(model, long)
        growth = state_long / state_short
        print(f"{name:15s} ({family}, {params / 1e6:.2f}M params): train fwd+bwd {tokens_per_s:8.0f} tokens/s "
              f"(L={seq_len}, batch {batch}, median of {repeats}); decode state {state_short} B at L={short}, "
              f"{state_long} B at L={long} ({growth:.1f}x)")
        results[f"train_tokens_per_s_L{seq_len}_{name}"] = round(tokens_per_s, 1)
        results[f"decode_state_growth_{long}_vs_{short}_{name}"] = round(growth, 2)
        results[f"decode_state_bytes_L{long}_{name}"] = state_long
    return results


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the CPU is shared)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per kernel (median reported)")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="workflow config with the model archs")
    parser.add_argument("--model-seq-len", type=int, default=512)
    parser.add_argument("--model-batch", type=int, default=2)
    parser.add_argument("--model-repeats", type=int, default=3)
    parser.add_argument("--skip-models", action="store_true", help="kernels only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s)")
    results: dict[str, float] = {}
    results |= kernel_benchmarks(seq_len=args.seq_len, repeats=args.repeats)
    if not args.skip_models:
        results |= model_benchmarks(args.config, args.model_seq_len, args.model_batch, args.model_repeats)
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
