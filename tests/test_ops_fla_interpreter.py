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
    import triton
    import fla_checks

    torch.set_num_threads(1)
    print("triton", triton.__version__)  # for the log: which interpreter ran
""")

# (dtype, tolerance, batch, length): one step; two chunks of fla's 64 (the state carried between them); bf16
# in one chunk. Kept small: the interpreter runs each program of a kernel as Python.
OPS_CASES = [("float32", 2e-5, 2, 1), ("float32", 2e-5, 1, 70), ("bfloat16", 3e-2, 2, 37)]
OPS_SCRIPT = PRELUDE + textwrap.dedent(f"""
    cases = [(getattr(torch, dtype), tol, B, T) for dtype, tol, B, T in {OPS_CASES!r}]
    fla_checks.compare_ops("cpu", cases)
""")

CLASSIFIER_SCRIPT = PRELUDE + textwrap.dedent("""
    for family in ("gla", "mmfree"):
        fla_checks.compare_classifier(family, "cpu", None, 2e-5)
        # bf16 autocast, as paper scale fine-tunes: logits and gradients (bf16 rounding: 2e-2)
        fla_checks.compare_classifier(family, "cpu", torch.bfloat16, 2e-2, checks=fla_checks.CLASSIFIER_CHECKS[:1])
""")


@pytest.fixture
def interpreter_env():
    return {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}


def test_fla_chunk_and_recurrent_kernels_match_ours_through_the_adapters(interpreter_env):
    lines = run_python(OPS_SCRIPT, env=interpreter_env, timeout=600).split("\n")
    ops = ("chunk_gla", "fused_recurrent_gla", "chunk_hgrn", "fused_recurrent_hgrn")
    assert [line for line in lines if line.startswith("ok ")] == [
        f"ok {op} {dtype} {T}" for dtype, _, _, T in OPS_CASES for op in ops]


def test_whole_classifiers_on_fla_kernels_match_the_torch_ops(interpreter_env):
    """GLA and HGRN-bit classifiers with the dispatch forced to fla, in one interpreter (imports are most of
    the time): fp32 logits and gradients on a right-padded batch, checkpointing, prefill + one decode step;
    bf16-autocast logits and gradients."""
    lines = run_python(CLASSIFIER_SCRIPT, env=interpreter_env, timeout=600).split("\n")
    from fla_checks import CLASSIFIER_CHECKS

    assert [line for line in lines if line.startswith("ok ")] == [
        f"ok {family} {dtype} {check}" for family in ("gla", "mmfree")
        for dtype, checks in (("fp32", CLASSIFIER_CHECKS), ("bfloat16", CLASSIFIER_CHECKS[:1])) for check in checks]
