"""Benchmarks print their measured ratios as one JSON object on the last line (never asserting times)."""

import json
import subprocess
import sys

import pytest

from workflow_helpers import REPO

# each benchmark runs in a process of its own for 10-30 s (about a minute in all): run with the heavy tests
pytestmark = pytest.mark.heavy


def test_bench_kernels_last_line_is_json_of_ratios():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_kernels.py"), "--repeats", "1", "--seq-len", "128",
         "--model-seq-len", "64", "--model-repeats", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ratios = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"gla_chunk_vs_recurrent_L128", "hgrn_chunk_vs_recurrent_L128",
            "gla_recurrent_vs_chunk_matmuls_only_L128"} <= set(ratios)
    assert all(value > 0 for value in ratios.values())
    # Recurrent families keep a constant decode state; the Transformer++ KV cache grows with the context.
    assert ratios["decode_state_growth_2048_vs_128_gla"] == 1.0
    assert ratios["decode_state_growth_2048_vs_128_mmfree"] == 1.0
    assert ratios["decode_state_growth_2048_vs_128_transformer_pp"] > 1.0


def test_bench_memory_last_line_is_json_of_projected_peaks():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_memory.py"), "--hidden", "256", "--batch", "4",
         "--seq-len", "64"],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    families = {"transformer_pp", "gla", "mmfree"}
    assert set(result["paper_peak_gib"]) == set(result["paper_peak_gib_checkpointing"]) == families
    for family in families:
        # checkpointing keeps one hidden state per layer and token instead of the block's activations
        assert result["paper_peak_gib_checkpointing"][family] < result["paper_peak_gib_no_checkpointing"][family]
        assert result["checkpointed_kib_per_token_per_layer"][family] < result["activation_kib_per_token_per_layer"][family]
    assert result["checkpointing_saving_x"] > 1.0


def test_bench_finetune_compares_with_transformers_llama():
    """Our Transformer++ against transformers' LlamaForSequenceClassification of the same shape and weights (the
    benchmark checks both give the same logits before timing them on the same batches)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_finetune.py"), "--only",
         "transformer_pp_vs_hf_llama_finetune", "--steps", "3", "--rounds", "1", "--examples", "300",
         "--batch-size", "8", "--max-length", "32"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ratios = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(ratios) == {"transformer_pp_vs_hf_llama_finetune"}
    assert ratios["transformer_pp_vs_hf_llama_finetune"] > 0
    assert "HF Llama" in proc.stdout


def test_bench_gpu_step_runs_the_paper_step_at_tiny_sizes_on_cpu():
    """The GPU check's 1.3B step, on the CPU at the rehearsal's tiny sizes: the same code (published config
    fields, the fine-tuning recipe's AdamW step under bf16 autocast, checkpointing as config/paper.yaml sets
    it, the planner's estimate) runs to its JSON line; memory is measured on CUDA only."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_gpu_step.py"), "--tiny", "--device", "cpu", "--batch", "2",
         "--seq-len", "24", "--warmup", "1", "--steps", "1", "--gla-without-checkpointing"],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["complete"] and result["all_ok"] and result["kernels"] == "torch"
    runs = result["families"]
    assert set(runs) == {"transformer_pp", "gla", "mmfree", "gla_no_checkpointing"}
    # config/paper.yaml checkpoints GLA only
    assert [name for name, run in runs.items() if run["checkpointing"]] == ["gla"]
    for run in runs.values():
        assert run["status"] == "ok" and run["losses_finite"] and len(run["losses"]) == 2
        assert run["tokens_per_s"] > 0 and run["planner_gib"] > 0 and run["peak_gib"] is None
        assert run["fla_kernel_calls"] == 0 and run["hidden_size"] == 64
    # the planner sees what checkpointing saves
    assert runs["gla"]["planner_gib"] < runs["gla_no_checkpointing"]["planner_gib"]
