"""The real paper-scale fine-tuning step on a GPU: memory against the plan, time, throughput and MFU.

Per family, the classifier at the published 1.3B shape (``kernels.rehearsal.checkpoints.PUBLISHED_CONFIGS``;
random initialisation, fp32 master weights, 3 labels) runs ``--warmup`` + ``--steps`` AdamW steps of the
fine-tuning recipe itself (``kernels.training.loop.optimizer_step``: bf16 autocast, loss check, clipping) on
random tokens at the paper config's largest batch (32 x 256), with activation checkpointing as
``config/paper.yaml`` sets it for the family (on for GLA). Reported per family:

    planner_gib               the fine-tune job's own estimate (kernels.training.memory: weights, gradients,
                              AdamW state, and one block's saved tensors probed on the CPU with the
                              pure-PyTorch ops, as the job plans before moving the model)
    planner_device_probe_gib  the same estimate with the block probed on this device (on CUDA: what fla's
                              autograd functions save, which the CPU probe cannot see)
    peak_gib                  torch.cuda.max_memory_allocated over the steps (after reset_peak_memory_stats)
    peak_over_planner         peak_gib / planner_gib (and peak_over_device_probe)
    step_s, tokens_per_s      median time of the timed steps (synchronised), batch tokens per second
    model_tflops, mfu         model FLOPs per second (kernels.profiling.flops: 3x the forward's matmuls, the
                              recomputation of checkpointing not counted) and their fraction of the device's
                              dense bf16 matmul peak measured at the start (kernels.profiling.peak); with
                              --peak-tflops also mfu_vs_nominal against the datasheet number given
    losses, losses_finite     every step's loss
    fla_kernel_calls          calls of fla's kernels during the steps (0: the pure-PyTorch ops ran)

``--gla-without-checkpointing`` adds ``gla_no_checkpointing`` (out of memory is recorded, not fatal). After each
family one JSON line with everything so far (``complete: false``) is printed, so a run cut short by a time
limit still leaves its numbers; the last line is the complete object. Autotuning of fla's kernels is bounded
by ``KERNELS_AUTOTUNE_CONFIGS`` (reported as ``autotune_configs``): tuned kernels may be faster.

    python benchmarks/bench_gpu_step.py [--families transformer_pp gla mmfree] [--gla-without-checkpointing]
    python benchmarks/bench_gpu_step.py --tiny --device cpu     # the same code at tiny sizes (tests, CPU)
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_fla_layers import synchronize  # noqa: E402
from bench_memory import paper_settings  # noqa: E402
from kernels.models import classifier_class, config_class  # noqa: E402
from kernels.models.common import set_activation_checkpointing  # noqa: E402
from kernels.ops.autotune import autotune_limit  # noqa: E402
from kernels.ops.backend import fla_call_record, fla_kernel_calls, kernel_provenance  # noqa: E402
from kernels.profiling.flops import flops_per_token  # noqa: E402
from kernels.rehearsal.checkpoints import PUBLISHED_CONFIGS, TINY_SIZES  # noqa: E402
from kernels.training.loop import FinetuneHyperparams, optimizer_step, parameter_groups  # noqa: E402
from kernels.training.memory import GIB, plan_memory, probe_layer  # noqa: E402

FAMILIES = ("transformer_pp", "gla", "mmfree")
NUM_LABELS = 3  # MNLI, the largest head
PAD_TOKEN_ID = 2  # the published Llama tokenizer pads with </s>
TINY_VOCAB = 512


def family_config(family: str, tiny: bool, layers: int | None = None):
    """The published 1.3B config of ``family`` (``tiny``: its rehearsal sizes), as the job loads it."""
    fields = {k: v for k, v in PUBLISHED_CONFIGS[family].items() if k not in ("model_type", "architectures")}
    if tiny:
        fields.update(TINY_SIZES[family], vocab_size=TINY_VOCAB)
    if layers is not None:
        fields["num_hidden_layers"] = layers
    return config_class(family)(**fields, num_labels=NUM_LABELS, pad_token_id=PAD_TOKEN_ID)


def planner_estimates(family: str, config, tiny: bool, batch: int, seq_len: int, max_tokens_per_step: int | None,
                      checkpointing: bool, device: torch.device) -> dict:
    """The job's own plan (``plan_memory``; block probed on the CPU) and the same plan with the block probed on
    ``device``."""
    with torch.device("meta"):  # parameters counted without allocating 1.3B of them
        model = classifier_class(family)(config)
    one_layer = classifier_class(family)(family_config(family, tiny, layers=1))

    def planned_gib(layer) -> float:
        return plan_memory(model, batch_size=batch, longest=seq_len, max_tokens_per_step=max_tokens_per_step,
                           gradient_checkpointing=checkpointing, dtype="bfloat16", device=str(device),
                           layer=layer)["peak_gib"]

    estimates = {"planner_gib": planned_gib(probe_layer(one_layer, "bfloat16"))}
    if device.type == "cuda":
        layer = probe_layer(one_layer.to(device), "bfloat16")
        estimates["planner_device_probe_gib"] = planned_gib(layer)
        estimates["device_probe_kib_per_token_per_layer"] = layer.bytes_per_token / 1024
    del one_layer
    return estimates


def run_family(family: str, checkpointing: bool, args, device: torch.device) -> dict:
    settings = paper_settings(family)
    batch, seq_len = args.batch or settings["batch_size"], args.seq_len or settings["max_length"]
    config = family_config(family, args.tiny)
    result = {"family": family, "checkpointing": checkpointing, "batch_size": batch, "seq_len": seq_len,
              "hidden_size": config.hidden_size, "num_hidden_layers": config.num_hidden_layers,
              **planner_estimates(family, config, args.tiny, batch, seq_len, settings.get("max_tokens_per_step"),
                                  checkpointing, device)}
    hp = FinetuneHyperparams(epochs=1, batch_size=batch, lr=float(settings["lr"]),
                             weight_decay=float(settings["weight_decay"]), max_grad_norm=settings["max_grad_norm"],
                             max_length=seq_len, device=str(device), dtype="bfloat16",
                             gradient_checkpointing=checkpointing,
                             max_tokens_per_step=settings.get("max_tokens_per_step"))
    generator = torch.Generator().manual_seed(0)
    data = {"input_ids": torch.randint(3, config.vocab_size, (batch, seq_len), generator=generator),
            "labels": torch.randint(0, NUM_LABELS, (batch,), generator=generator)}
    data = {key: value.to(device) for key, value in data.items()}
    data["attention_mask"] = torch.ones_like(data["input_ids"])
    model = optimizer = None
    try:
        torch.manual_seed(0)
        with torch.device(device):
            model = classifier_class(family)(config)
        result["params"] = sum(p.numel() for p in model.parameters())
        model.train()
        if checkpointing:
            set_activation_checkpointing(model, True)
        optimizer = torch.optim.AdamW(parameter_groups(model, hp.weight_decay), lr=hp.lr)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            result["weights_gib"] = torch.cuda.memory_allocated(device) / GIB
        calls_before = fla_kernel_calls()
        losses, times = [], []
        for step in range(1, args.warmup + args.steps + 1):
            synchronize(device)
            start = time.perf_counter()
            losses.append(optimizer_step(model, optimizer, data, hp, device, step))
            synchronize(device)
            if step > args.warmup:
                times.append(time.perf_counter() - start)
        result.update(fla_call_record(calls_before))
        result["status"] = "ok"
    except (torch.OutOfMemoryError, FloatingPointError) as error:  # recorded: the other runs go on
        oom = isinstance(error, torch.OutOfMemoryError)
        result.update(status="oom" if oom else "non-finite loss", error=str(error)[:300], losses_finite=oom)
        return result
    finally:
        del model, optimizer
        gc.collect()
        result["peak_gib"] = torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None
        if device.type == "cuda":
            torch.cuda.empty_cache()
    step_s = statistics.median(times)
    flops = flops_per_token(family, config, "train", seq_len, 0)
    result.update(losses=losses, losses_finite=all(math.isfinite(x) for x in losses), step_s=step_s,
                  tokens_per_s=batch * seq_len / step_s, model_tflops=flops * batch * seq_len / step_s / 1e12)
    if result["peak_gib"] is not None:
        result["peak_over_planner"] = result["peak_gib"] / result["planner_gib"]
        if "planner_device_probe_gib" in result:
            result["peak_over_device_probe"] = result["peak_gib"] / result["planner_device_probe_gib"]
    if args.peak_gflops:
        result["mfu"] = result["model_tflops"] * 1e3 / args.peak_gflops
    if args.peak_tflops:
        result["mfu_vs_nominal"] = result["model_tflops"] / args.peak_tflops
    return result


def rounded(value):
    if isinstance(value, float):
        return float(f"{value:.4g}") if abs(value) < 100 else round(value, 1)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--gla-without-checkpointing", action="store_true",
                        help="also run GLA without activation checkpointing (config/paper.yaml turns it on)")
    parser.add_argument("--batch", type=int, default=None, help="rows per step (default: config/paper.yaml's 32)")
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per row (default: max_length, 256)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation, autotuning)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the rehearsal's tiny sizes (hidden 64, 2 layers)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the GPU's nominal dense bf16 peak, for mfu_vs_nominal (e.g. 989 for an H100/H200 SXM)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_gpu_step: --device cuda but CUDA is not available (--device cpu --tiny runs it on the CPU)")
    provenance = kernel_provenance(device)  # imports fla when it can run, which applies the autotune limit
    args.peak_gflops = None
    if device.type == "cuda":
        from kernels.profiling.peak import measure_matmul_peak_gflops

        args.peak_gflops = measure_matmul_peak_gflops(device, "bfloat16")
    header = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "kernels": provenance["kernels"], "kernels_reason": provenance["kernels_reason"],
              "fla_version": provenance["fla_version"], "triton_version": provenance["triton_version"],
              "torch_version": provenance["torch_version"], "autotune_configs": autotune_limit(),
              "matmul_peak_tflops": args.peak_gflops / 1e3 if args.peak_gflops else None, "tiny": args.tiny}
    print(f"bench_gpu_step: {header}", flush=True)
    runs = [(family, family, bool(paper_settings(family).get("gradient_checkpointing"))) for family in args.families]
    if args.gla_without_checkpointing:
        runs.append(("gla_no_checkpointing", "gla", False))
    results: dict[str, dict] = {}
    for name, family, checkpointing in runs:
        results[name] = rounded(run_family(family, checkpointing, args, device))
        print(f"{name}: {results[name]}", flush=True)
        print(json.dumps({**rounded(header), "families": results, "complete": False}), flush=True)
    summary = {**rounded(header), "families": results, "complete": True,
               "all_ok": all(r["status"] == "ok" and r["losses_finite"] for n, r in results.items()
                             if n != "gla_no_checkpointing")}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
