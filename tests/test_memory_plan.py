"""The fine-tune's memory plan: its estimate against a measured peak, and the fail-fast decision."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

from kernels.models import build_classifier
from kernels.training import FinetuneHyperparams, train_classifier
from kernels.training.batching import EncodedExamples
from kernels.training.memory import (GIB, LayerActivations, MemoryPlanError, ModelMemory, check_device_memory,
                                     check_fits, estimate_peak, micro_batch_tokens, plan_memory, probe_layer,
                                     saved_tensor_bytes)
from workflow_helpers import run_python

torch.set_num_threads(1)


def tiny(family: str = "mmfree", hidden: int = 32, layers: int = 2):
    arch = {"hidden_size": hidden, "num_hidden_layers": layers, **({} if family == "mmfree" else {"num_heads": 2})}
    return build_classifier(family, arch, vocab_size=64, num_labels=2, pad_token_id=0, seed=0)


# --- measuring what autograd keeps -----------------------------------------------------------------

def test_saved_tensor_bytes_counts_what_the_graph_keeps():
    x = torch.randn(1000, requires_grad=True)
    assert saved_tensor_bytes(lambda: x.exp()) == 4000  # exp saves its output
    assert saved_tensor_bytes(lambda: (x * x).sum()) == 4000  # x twice: one storage
    assert saved_tensor_bytes(lambda: x.exp().detach()) == 0  # the graph is dropped with the result
    assert saved_tensor_bytes(lambda: x.exp(), exclude={x.untyped_storage().data_ptr()}) == 4000
    assert saved_tensor_bytes(lambda: x * 2.0) == 0


def test_probe_layer_scales_with_tokens_and_dtype():
    model = tiny("transformer_pp", hidden=64)
    fp32, bf16 = probe_layer(model, "float32"), probe_layer(model, "bfloat16")
    assert fp32.input_bytes_per_token == 64 * 4
    # the block saves its input and several intermediates of its width for each token
    assert fp32.bytes_per_token > 4 * fp32.input_bytes_per_token
    assert bf16.bytes_per_token < fp32.bytes_per_token  # autocast keeps activations in bf16
    assert bf16.fixed_bytes > 0  # bf16 copies of the block's weights


def test_probe_layer_leaves_the_global_random_stream_where_it_was():
    # The plan runs between seeding and training: a block with a random op (dropout) must not shift the run.
    model = tiny("gla")
    block = model.model.layers[-1]
    block.register_forward_hook(lambda module, args, output: torch.rand(1000))
    torch.manual_seed(1234)
    probe_layer(model)
    after_probe = torch.rand(3)
    torch.manual_seed(1234)
    assert torch.equal(after_probe, torch.rand(3))


def test_estimate_parts_follow_the_settings():
    memory = ModelMemory(params_bytes=1000, grads_bytes=1000, optimizer_bytes=2000, num_layers=10)
    layer = LayerActivations(bytes_per_token=100.0, fixed_bytes=50.0, input_bytes_per_token=8.0)
    full = estimate_peak(memory, layer, tokens=64, checkpointing=False)
    assert full["activations_bytes"] == 10 * (100 * 64 + 50) + 8 * 64
    kept = estimate_peak(memory, layer, tokens=64, checkpointing=True)
    assert kept["activations_bytes"] == 10 * 8 * 64 + (100 * 64 + 50) + 8 * 64
    assert kept["peak_bytes"] < full["peak_bytes"]
    assert full["peak_bytes"] == sum(v for k, v in full.items() if k != "peak_bytes")
    assert micro_batch_tokens(32, 100, None) == 3200
    assert micro_batch_tokens(32, 100, 1024) == 1024
    assert micro_batch_tokens(2, 100, 1024) == 200


# --- fail fast ---------------------------------------------------------------------------------------

def paper_like_plan(checkpointing: bool = False) -> dict:
    """A plan shaped like a 1.3B fine-tune (numbers in the range bench_memory measures)."""
    model = tiny("mmfree")
    layer = LayerActivations(bytes_per_token=300 * 1024, fixed_bytes=100 * 2 ** 20, input_bytes_per_token=8192)
    plan = plan_memory(model, batch_size=32, longest=256, max_tokens_per_step=None,
                       gradient_checkpointing=checkpointing, dtype="bfloat16", device="cuda", layer=layer)
    # the parameter side of 1.3B parameters in fp32, on the tiny model's layer count scaled to 24 layers
    plan.update(params_bytes=5.2e9, grads_bytes=5.2e9, optimizer_bytes=10.4e9, num_layers=24)
    plan["peak_bytes"] = estimate_peak(ModelMemory(5.2e9, 5.2e9, 10.4e9, 24), layer, 8192, checkpointing)["peak_bytes"]
    plan["peak_gib"] = plan["peak_bytes"] / GIB
    return plan


def test_a_plan_that_fits_is_recorded_with_the_device_memory():
    plan = paper_like_plan()
    checked = check_fits(plan, free_bytes=plan["peak_bytes"] * 2, total_bytes=plan["peak_bytes"] * 2.5, max_length=256)
    assert checked["fits"] is True and checked["device_free_bytes"] == plan["peak_bytes"] * 2
    json.dumps(checked)  # recordable as it is


def test_a_plan_that_cannot_fit_stops_with_the_estimate_and_the_keys_that_fit():
    plan = paper_like_plan()
    free = 40 * GIB  # more than weights + optimizer state, less than the full activations
    assert plan["peak_bytes"] > free
    with pytest.raises(MemoryPlanError) as error:
        check_fits(plan, free_bytes=free, total_bytes=80 * GIB, max_length=256)
    message = str(error.value)
    assert f"estimated peak memory {plan['peak_gib']:.1f} GiB" in message
    assert "40.0 GiB free (of 80.0 GiB)" in message
    assert "finetune.gradient_checkpointing: true" in message
    assert "finetune.max_tokens_per_step: " in message and "models.<name>.finetune.<key>" in message
    # every suggested setting really fits
    budget = int(message.split("finetune.max_tokens_per_step: ")[1].split()[0].rstrip(";"))
    assert budget >= 256 and budget % 256 == 0
    memory = ModelMemory(5.2e9, 5.2e9, 10.4e9, 24)
    layer = LayerActivations(**plan["layer"])
    assert estimate_peak(memory, layer, budget, checkpointing=False)["peak_bytes"] <= free
    assert estimate_peak(memory, layer, budget + 256, checkpointing=False)["peak_bytes"] > free
    assert estimate_peak(memory, layer, 8192, checkpointing=True)["peak_bytes"] <= free


def test_a_device_too_small_for_the_weights_says_so():
    plan = paper_like_plan(checkpointing=True)
    with pytest.raises(MemoryPlanError, match="weights, gradients and AdamW state alone take 19.4 GiB"):
        check_fits(plan, free_bytes=16 * GIB, total_bytes=16 * GIB, max_length=256)


def test_cpu_runs_record_the_plan_without_a_device_check(capfd, tmp_path):
    plan = paper_like_plan()
    assert check_device_memory(plan, torch.device("cpu"), 256) is plan
    rng = np.random.default_rng(0)
    examples = EncodedExamples([rng.integers(1, 64, size=n).tolist() for n in (5, 9, 17, 30)], np.array([0, 1, 0, 1]))
    hp = FinetuneHyperparams(epochs=1, batch_size=4, max_length=32, max_tokens_per_step=64, gradient_checkpointing=True)
    result = train_classifier(tiny("gla"), examples, hp, pad_token_id=0, checkpoint_dir=tmp_path, progress=False)
    assert result.memory_plan["micro_batch_tokens"] == 64 and result.memory_plan["longest_example"] == 30
    assert result.memory_plan["fits"] is None  # no device to compare with on CPU
    logged = [line for line in capfd.readouterr().err.splitlines() if line.startswith("memory plan: ")]
    assert json.loads(logged[-1][len("memory plan: "):]) == json.loads(json.dumps(result.memory_plan))


# --- the estimate against a measured peak --------------------------------------------------------------

PEAK_WORKER = """
import json, gc
import numpy as np, torch
torch.set_num_threads(1)
from kernels.models import build_classifier
from kernels.training import FinetuneHyperparams, train_classifier
from kernels.training.batching import EncodedExamples

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

family, ckpt, budget, dtype = {family!r}, {ckpt!r}, {budget!r}, {dtype!r}
rng = np.random.default_rng(0)
enc = EncodedExamples([rng.integers(1, 500, size=128).tolist() for _ in range(32)], rng.integers(0, 2, size=32))
arch = {{"hidden_size": 256, "num_hidden_layers": 4, **({{}} if family == "mmfree" else {{"num_heads": 4}})}}
hp = FinetuneHyperparams(epochs=1, batch_size=16, max_length=128, checkpoint_every=100, gradient_checkpointing=ckpt,
                         max_tokens_per_step=budget, dtype=dtype)
# warm-up: a tiny run with the same settings loads every library and kernel the measured run uses
warm = build_classifier(family, {{**arch, "hidden_size": 32, "num_hidden_layers": 1}}, vocab_size=512, num_labels=2,
                        pad_token_id=0, seed=0)
train_classifier(warm, enc, hp, pad_token_id=0, checkpoint_dir={tmp!r} + "/warm", progress=False)
del warm
gc.collect()
open("/proc/self/clear_refs", "w").write("5")  # reset the peak resident set size (VmHWM)
base = status("VmRSS")
model = build_classifier(family, arch, vocab_size=512, num_labels=2, pad_token_id=0, seed=0)
result = train_classifier(model, enc, hp, pad_token_id=0, checkpoint_dir={tmp!r} + "/run", progress=False)
print(json.dumps({{"measured": status("VmHWM") - base, "estimate": result.memory_plan["peak_bytes"]}}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak RSS from /proc")
@pytest.mark.parametrize("family,ckpt,budget,dtype", [
    ("mmfree", False, None, "float32"),
    ("gla", True, 512, "float32"),
    ("transformer_pp", True, None, "bfloat16"),
])
@pytest.mark.heavy  # 75 s: three training runs in fresh processes
def test_estimate_is_within_20_percent_of_the_measured_peak(family, ckpt, budget, dtype, tmp_path):
    """Two optimizer steps of a 4-layer, hidden-256 model on 16 x 128-token batches, in a fresh process
    whose allocator returns freed blocks to the system (so the RSS follows the live tensors)."""
    code = PEAK_WORKER.format(family=family, ckpt=ckpt, budget=budget, dtype=dtype, tmp=str(tmp_path))
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = json.loads(run_python(code, env=env).strip().splitlines()[-1])
    ratio = out["estimate"] / out["measured"]
    assert 0.8 <= ratio <= 1.2, out
