"""fla's own triton kernels, executed by triton's CPU interpreter, against the pure-PyTorch kernels.

On CUDA, ``kernels.ops`` hands GLA and HGRN to fla through small adapters (the ``_fla_*`` functions:
argument names, fla's ``gk`` gate keyword, state layout and dtype, the call counter behind the
``fla_kernel_calls`` provenance). Without a GPU they would never run. With ``TRITON_INTERPRET=1`` triton
executes fla's real kernel code on CPU tensors, so here the adapters, fla's chunk and fused-recurrent
kernels for GLA and HGRN (forward and backward) and whole GLA / HGRN-bit classifiers with the dispatch
forced to fla are compared with this package's pure-PyTorch ops: padding, activation checkpointing, a
prefill followed by one decode step, bf16. The interpreter needs workarounds that live on the test side
(``tests/fla_interpreter.py``, each explained there); none of them touches the product's code path.

Each script runs in a fresh interpreter (``TRITON_INTERPRET`` is read when triton is imported). The two
take about 60 s of CPU together (a third of it imports) on the 2-core machine. They pass with triton 3.6 (the CUDA nodes'
triton with torch 2.11) and 3.7+; .ci/run also runs them with triton 3.6 laid over the venv's.

Tolerances: fp32 results of the interpreter are fp32 throughout (its ``tl.dot`` is numpy's fp32 matmul:
triton's default TF32 on CUDA is not emulated), so fp32 comparisons are at fp32 rounding (1e-5 relative);
bf16 comparisons allow bf16's rounding (8 bits of mantissa: about 4e-3 relative per operation).
"""

from __future__ import annotations

import importlib.util
import os
import textwrap

import pytest

from workflow_helpers import run_python

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("fla") is None or importlib.util.find_spec("triton") is None,
    reason="fla with triton is not installed")

PRELUDE = textwrap.dedent("""
    import sys
    sys.path.insert(0, "tests")
    import fla_interpreter
    fla_interpreter.install()
    fla_interpreter.force_fla_dispatch()

    import torch
    import torch.nn.functional as F
    import triton
    from kernels.ops import backend

    torch.set_num_threads(1)
    print("triton", triton.__version__)  # for the log: which interpreter ran

    def close(name, actual, expected, tol):
        torch.testing.assert_close(actual.float(), expected.float(), atol=tol, rtol=tol,
                                   msg=lambda m: f"{name}: {m}")

    def on_torch_ops(fn, *args, **kwargs):
        backend.set_force_torch(True)
        try:
            return fn(*args, **kwargs)
        finally:
            backend.set_force_torch(None)

    def calls_of(fn, *args, **kwargs):
        before = backend.fla_kernel_calls()
        result = fn(*args, **kwargs)
        return result, {op: n for op, n in backend.fla_calls_since(before).items() if n}
""")

OPS_SCRIPT = PRELUDE + textwrap.dedent("""
    from kernels.ops.gla import chunk_gla, fused_recurrent_gla
    from kernels.ops.hgrn import chunk_hgrn, fused_recurrent_hgrn

    gen = torch.Generator().manual_seed(0)
    H, K, V, D = 2, 16, 8, 32
    # (dtype, tolerance, batch, length): one step; two chunks of fla's 64 (the state carried between them);
    # bf16 in one chunk. Kept small: the interpreter runs each kernel program as Python.
    CASES = ((torch.float32, 2e-5, 2, 1), (torch.float32, 2e-5, 1, 70), (torch.bfloat16, 3e-2, 2, 37))

    def gla_run(fn, leaves, weights):
        q, k, v, g, h0 = (t.detach().clone().requires_grad_() for t in leaves)
        o, s = fn(q, k, v, g, initial_state=h0, output_final_state=True)
        ((o.float() * weights[0]).sum() + (s * weights[1]).sum()).backward()
        return [o, s, q.grad, k.grad, v.grad, g.grad, h0.grad]

    def hgrn_run(fn, leaves, weights, state_grads):
        x, g, h0 = (t.detach().clone().requires_grad_() for t in leaves)
        o, s = fn(x, g, initial_state=h0, output_final_state=True)
        loss = (o.float() * weights[0]).sum()
        if state_grads:  # fla's chunk_hgrn ignores the final state's gradient and returns none for h0
            loss = loss + (s * weights[1]).sum()
        loss.backward()
        return [o, s, x.grad, g.grad] + ([h0.grad] if state_grads else [])

    for dtype, tol, B, T in CASES:
        q, k = (torch.randn(B, T, H, K, generator=gen).to(dtype) for _ in range(2))
        v = torch.randn(B, T, H, V, generator=gen).to(dtype)
        g = (F.logsigmoid(torch.randn(B, T, H, K, generator=gen)) / 4).to(dtype)
        h0 = torch.randn(B, H, K, V, generator=gen)  # states are fp32 (fla asserts it)
        w = (torch.randn(B, T, H, V, generator=gen), torch.randn(B, H, K, V, generator=gen))
        for fn in (chunk_gla, fused_recurrent_gla):
            ours, calls = calls_of(gla_run, fn, (q, k, v, g, h0), w)
            assert calls == {fn.__name__: 1}, calls
            expected, none = calls_of(on_torch_ops, gla_run, fn, (q, k, v, g, h0), w)
            assert none == {}, none
            for index, (a, e) in enumerate(zip(ours, expected)):
                scale = e.abs().max().clamp(min=1)  # bf16: relative to the largest entry
                close(f"{fn.__name__} {dtype} T={T} output {index}", a / scale, e / scale, tol)
            print("ok", fn.__name__, str(dtype)[6:], T)
        x = torch.randn(B, T, D, generator=gen).to(dtype)
        gh = F.logsigmoid(torch.randn(B, T, D, generator=gen)).to(dtype)
        s0 = torch.randn(B, D, generator=gen)
        w = (torch.randn(B, T, D, generator=gen), torch.randn(B, D, generator=gen))
        for fn, state_grads in ((chunk_hgrn, False), (fused_recurrent_hgrn, True)):
            ours, calls = calls_of(hgrn_run, fn, (x, gh, s0), w, state_grads)
            assert calls == {fn.__name__: 1}, calls
            expected = on_torch_ops(hgrn_run, fn, (x, gh, s0), w, state_grads)
            for index, (a, e) in enumerate(zip(ours, expected)):
                scale = e.abs().max().clamp(min=1)
                close(f"{fn.__name__} {dtype} T={T} output {index}", a / scale, e / scale, tol)
            print("ok", fn.__name__, str(dtype)[6:], T)
""")

CLASSIFIER_SCRIPT = PRELUDE + textwrap.dedent("""
    from kernels.models import classifier_class, config_class
    from kernels.models.common import decode_state_of, set_activation_checkpointing

    ARCH = {"gla": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2},
            "mmfree": {"hidden_size": 32, "num_hidden_layers": 2}}
    SEQUENCE_OP = {"gla": "chunk_gla", "mmfree": "chunk_hgrn"}
    STEP_OP = {"gla": "fused_recurrent_gla", "mmfree": "fused_recurrent_hgrn"}
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 64, (2, 17), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # right padding, as the classifiers require
    ids = ids * mask
    labels = torch.tensor([0, 2])

    def loss_and_grads(model, dtype=None):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = model(ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    for family in sys.argv[1:]:
        torch.manual_seed(0)
        model = classifier_class(family)(config_class(family)(vocab_size=64, pad_token_id=0, num_labels=3,
                                                              **ARCH[family]))
        model.train()
        layers, sequence_op, step_op = len(model.model.layers), SEQUENCE_OP[family], STEP_OP[family]

        # fp32: logits and every parameter gradient, fla's kernels vs the pure-PyTorch ops
        (logits, grads), calls = calls_of(loss_and_grads, model)
        assert calls == {sequence_op: layers}, calls
        (logits_torch, grads_torch), none = calls_of(on_torch_ops, loss_and_grads, model)
        assert none == {}, none
        close("logits fp32", logits, logits_torch, 2e-5)
        assert grads.keys() == grads_torch.keys()
        for name in grads:
            scale = grads_torch[name].abs().max().clamp(min=1e-3)
            close(f"{family} grad {name}", grads[name] / scale, grads_torch[name] / scale, 1e-4)
        print("ok", family, "fp32 logits and gradients")

        # activation checkpointing on fla's kernels: the recomputed forward calls them again, and the
        # gradients are those without checkpointing
        set_activation_checkpointing(model, True)
        (logits_ckpt, grads_ckpt), calls = calls_of(loss_and_grads, model)
        set_activation_checkpointing(model, False)
        assert calls == {sequence_op: 2 * layers}, calls  # forward + recomputation
        close("logits checkpointed", logits_ckpt, logits, 1e-6)
        for name in grads:
            scale = grads[name].abs().max().clamp(min=1e-3)
            close(f"{family} grad checkpointed {name}", grads_ckpt[name] / scale, grads[name] / scale, 1e-6)
        print("ok", family, "checkpointing")

        # bf16 autocast, as paper scale fine-tunes and evaluates
        (logits_bf16, _), calls = calls_of(loss_and_grads, model, torch.bfloat16)
        assert calls == {sequence_op: layers}, calls
        logits_bf16_torch, _ = on_torch_ops(loss_and_grads, model, torch.bfloat16)
        close(f"{family} logits bf16", logits_bf16, logits_bf16_torch, 2e-2)
        print("ok", family, "bf16 logits")

        # prefill with the chunked kernel, then one decode step with the recurrent one: the full forward
        model.eval()
        with torch.no_grad():
            full = model.model(ids[:1])
            prefill, calls_prefill = calls_of(model.model, ids[:1, :-1], use_cache=True)
            step, calls_step = calls_of(model.model, ids[:1, -1:], past_state=decode_state_of(prefill),
                                        use_cache=True)
            full_torch = on_torch_ops(model.model, ids[:1])
        assert calls_prefill == {sequence_op: layers} and calls_step == {step_op: layers}, (calls_prefill, calls_step)
        last = step.last_hidden_state[:, -1]
        close(f"{family} decode step", last, full.last_hidden_state[:, -1], 2e-5)
        close(f"{family} decode vs torch ops", last, full_torch.last_hidden_state[:, -1], 2e-5)
        print("ok", family, "prefill and decode")
""")


@pytest.fixture
def interpreter_env():
    return {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}


def test_fla_chunk_and_recurrent_kernels_match_ours_through_the_adapters(interpreter_env):
    lines = run_python(OPS_SCRIPT, env=interpreter_env, timeout=600).split("\n")
    oks = [line for line in lines if line.startswith("ok ")]
    ops = ("chunk_gla", "fused_recurrent_gla", "chunk_hgrn", "fused_recurrent_hgrn")
    expected = {f"ok {op} {dtype} {T}" for op in ops for dtype, T in (("float32", 1), ("float32", 70), ("bfloat16", 37))}
    assert set(oks) == expected and len(oks) == len(expected)


def test_whole_classifiers_on_fla_kernels_match_the_torch_ops(interpreter_env):
    """GLA and HGRN-bit classifiers with the dispatch forced to fla, in one interpreter (imports are most of
    the time): fp32 and bf16-autocast logits and gradients, checkpointing, prefill + one decode step."""
    code = "import sys; sys.argv = ['check', 'gla', 'mmfree']\n" + CLASSIFIER_SCRIPT
    lines = run_python(code, env=interpreter_env, timeout=600).split("\n")
    assert [line for line in lines if line.startswith("ok ")] == [
        f"ok {family} {check}" for family in ("gla", "mmfree")
        for check in ("fp32 logits and gradients", "checkpointing", "bf16 logits", "prefill and decode")]
