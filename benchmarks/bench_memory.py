"""Activation memory of one decoder layer per family, and the projected peak of paper-scale fine-tuning.

For each family, one decoder block at the paper's hidden size (2048; the family's 1.3B defaults otherwise)
runs forward on CPU under bf16 autocast with fp32 weights, as the paper config fine-tunes, on a batch of
``--batch`` rows of ``--seq-len`` tokens and of half as many rows, in a fresh process whose allocator
returns freed blocks to the system (after one warm-up forward per family): the growth of its resident set
size (RSS) from just before the forward to just after it is what the block keeps alive for backward
(its saved activations and output). The two batch sizes give the bytes
per token (slope) and the token-independent part (bf16 weight copies; intercept). With checkpointing the
block runs inside ``torch.utils.checkpoint`` (non-reentrant) and keeps only its input (and its output).

Projection (``kernels.training.memory.estimate_peak``, the fine-tune job's own planner): weights, gradients
and AdamW moments of the full 24-layer classifier (counted on the meta device) plus the layers' activations
for the paper config's largest micro-batch: ``batch_size x max_length`` tokens of config/paper.yaml
(the effective batch), or its ``max_tokens_per_step`` when set, with the family's ``gradient_checkpointing``.
Also printed: the planner's own per-token estimate (saved-tensor accounting) next to the RSS measurement.

Last stdout line: ``{"paper_peak_gib": {family: GiB with the paper config's settings},
"paper_peak_gib_no_checkpointing": {...}, "checkpointing_saving_x": <peak without / with checkpointing,
the smallest over the families>, "activation_kib_per_token_per_layer": {...}, ...}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kernels.models import FAMILIES, classifier_class, config_class  # noqa: E402
from kernels.training.memory import (GIB, LayerActivations, estimate_peak, micro_batch_tokens,  # noqa: E402
                                     model_memory, probe_layer)

PAPER_CONFIG = REPO / "config" / "paper.yaml"
BASE_CONFIG = REPO / "config" / "config.yaml"
VOCAB = 32000  # the three 1.3B checkpoints' vocabulary
NUM_LABELS = 3  # MNLI, the largest head


# Workers run with a fixed glibc mmap threshold: every block of 64 KiB or more is its own mapping, returned
# to the system when freed, so the RSS follows the live tensors instead of the allocator's cached peak.
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def release_free_memory() -> None:
    """Return glibc's free heap pages to the system (no-op where malloc_trim does not exist)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; the peak from getrusage elsewhere)."""
    release_free_memory()
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def one_layer_classifier(family: str, hidden: int):
    """The family's 1.3B configuration with one decoder layer (and the hidden size asked for)."""
    cfg = config_class(family)(vocab_size=VOCAB, num_labels=NUM_LABELS, pad_token_id=0, hidden_size=hidden,
                               num_hidden_layers=1)
    return classifier_class(family)(cfg)


def block_forward(block, extra, batch: int, seq_len: int, hidden: int, checkpointing: bool) -> int:
    """RSS growth of one forward of ``block`` under bf16 autocast that keeps its graph for backward."""
    import gc

    from torch.utils.checkpoint import checkpoint

    generator = torch.Generator().manual_seed(batch)
    hidden_in = torch.randn(batch, seq_len, hidden, generator=generator).requires_grad_(True)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    gc.collect()
    before = rss_bytes()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if checkpointing:
            out = checkpoint(block, hidden_in, mask, None, False, *extra, use_reentrant=False)
        else:
            out = block(hidden_in, mask, None, False, *extra)
    gc.collect()
    after = rss_bytes()
    assert out[0].requires_grad  # the graph (and what it saved) is alive
    del out
    return after - before


def measure_worker(family: str, hidden: int, batch: int, seq_len: int, threads: int) -> dict:
    """In this (fresh) process: one block's RSS growth at ``batch`` and ``batch // 2`` rows, with and without
    checkpointing, after a warm-up forward (which loads the kernels and their scratch buffers)."""
    torch.set_num_threads(threads)
    model = one_layer_classifier(family, hidden)
    model.train()
    block = model.model.layers[0]
    extra = model.model.per_layer_inputs()
    extra = () if extra is None else (extra[0].detach(),)
    block_forward(block, extra, 1, seq_len, hidden, checkpointing=False)
    rows = (max(1, batch // 2), batch)
    return {f"{'checkpointed' if kept else 'full'}_{n}": block_forward(block, extra, n, seq_len, hidden, kept)
            for kept in (False, True) for n in rows} | {"rows": list(rows), "seq_len": seq_len}


def run_worker(args) -> dict:
    """Every family's measurements, from one fresh process (started with ``WORKER_ENV``)."""
    command = [sys.executable, __file__, "--worker", "--hidden", str(args.hidden), "--batch", str(args.batch),
               "--seq-len", str(args.seq_len), "--threads", str(args.threads), "--families", *args.families]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, env={**os.environ, **WORKER_ENV})
    if proc.returncode != 0:
        raise RuntimeError(f"measuring worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def slope_and_intercept(measured: dict, kind: str) -> tuple[float, float]:
    """(bytes per token, token-independent bytes) of one block, from its two batch sizes."""
    small_rows, large_rows = measured["rows"]
    small, large = measured[f"{kind}_{small_rows}"], measured[f"{kind}_{large_rows}"]
    tokens = (small_rows * measured["seq_len"], large_rows * measured["seq_len"])
    slope = max(0.0, (large - small) / max(tokens[1] - tokens[0], 1))
    return slope, max(0.0, large - slope * tokens[1])


def paper_settings(family: str) -> dict:
    """The finetune settings config/paper.yaml gives ``family``'s model (layered over config/config.yaml)."""
    base = yaml.safe_load(BASE_CONFIG.read_text())
    paper = yaml.safe_load(PAPER_CONFIG.read_text())
    settings = copy.deepcopy(base["finetune"])
    settings.update(paper.get("finetune") or {})
    for model in (paper.get("models") or {}).values():
        if model.get("family") == family:
            settings.update(model.get("finetune") or {})
            break
    return settings


def paper_model_memory(family: str, hidden: int):
    """Weights, gradients and AdamW state of the family's full classifier, counted without allocating it."""
    with torch.device("meta"):
        cfg = config_class(family)(vocab_size=VOCAB, num_labels=NUM_LABELS, pad_token_id=0, hidden_size=hidden)
        return model_memory(classifier_class(family)(cfg))


def planner_layer(family: str, hidden: int, threads: int) -> LayerActivations:
    torch.set_num_threads(threads)
    return probe_layer(one_layer_classifier(family, hidden), "bfloat16")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=2048, help="hidden size of the measured layer (paper: 2048)")
    parser.add_argument("--batch", type=int, default=4, help="rows of the larger measured batch")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per row (paper: max_length 256)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the CPU is shared)")
    parser.add_argument("--families", nargs="+", default=sorted(FAMILIES), choices=sorted(FAMILIES))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps({family: measure_worker(family, args.hidden, args.batch, args.seq_len, args.threads)
                          for family in args.families}))
        return {}

    result: dict[str, dict] = {"paper_peak_gib": {}, "paper_peak_gib_no_checkpointing": {},
                               "paper_peak_gib_checkpointing": {}, "activation_kib_per_token_per_layer": {},
                               "checkpointed_kib_per_token_per_layer": {}, "planner_vs_rss_per_token": {}}
    savings = {}
    measured_all = run_worker(args)
    for family in args.families:
        measured_rss = measured_all[family]
        full_slope, full_fixed = slope_and_intercept(measured_rss, "full")
        kept_slope, _ = slope_and_intercept(measured_rss, "checkpointed")
        planned = planner_layer(family, args.hidden, args.threads)
        measured = LayerActivations(full_slope, full_fixed, planned.input_bytes_per_token)
        settings = paper_settings(family)
        memory = paper_model_memory(family, args.hidden)
        tokens = micro_batch_tokens(settings["batch_size"], settings["max_length"], settings.get("max_tokens_per_step"))
        full_batch = settings["batch_size"] * settings["max_length"]
        without = estimate_peak(memory, measured, full_batch, checkpointing=False)["peak_bytes"] / GIB
        with_ckpt = estimate_peak(memory, measured, full_batch, checkpointing=True)["peak_bytes"] / GIB
        configured = estimate_peak(memory, measured, tokens, bool(settings.get("gradient_checkpointing")))
        result["paper_peak_gib"][family] = round(configured["peak_bytes"] / GIB, 2)
        result["paper_peak_gib_no_checkpointing"][family] = round(without, 2)
        result["paper_peak_gib_checkpointing"][family] = round(with_ckpt, 2)
        result["activation_kib_per_token_per_layer"][family] = round(full_slope / 1024, 1)
        result["checkpointed_kib_per_token_per_layer"][family] = round(kept_slope / 1024, 1)
        result["planner_vs_rss_per_token"][family] = round(planned.bytes_per_token / max(full_slope, 1.0), 3)
        savings[family] = without / with_ckpt
        print(f"{family:15s} per layer: {full_slope / 1024:7.1f} KiB/token + {full_fixed / 2**20:6.1f} MiB "
              f"(checkpointed {kept_slope / 1024:5.1f} KiB/token; planner {planned.bytes_per_token / 1024:7.1f} "
              f"KiB/token + {planned.fixed_bytes / 2**20:6.1f} MiB) | paper peak, {full_batch} tokens: "
              f"{without:6.1f} GiB without, {with_ckpt:6.1f} GiB with checkpointing; as configured "
              f"(checkpointing={bool(settings.get('gradient_checkpointing'))}, micro-batch {tokens} tokens): "
              f"{configured['peak_bytes'] / GIB:6.1f} GiB", flush=True)
    result["checkpointing_saving_x"] = round(min(savings.values()), 2)
    result["checkpointing_saving_x_per_family"] = {f: round(x, 2) for f, x in savings.items()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
