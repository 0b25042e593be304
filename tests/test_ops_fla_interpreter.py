"""fla's own triton kernels, executed by triton's CPU interpreter, against the pure-PyTorch kernels.

On CUDA, ``kernels.ops`` hands GLA and HGRN to fla through small adapters (the ``_fla_*`` functions:
argument names, fla's ``gk`` gate keyword, state layout and dtype). Without a GPU they would never run.
With ``TRITON_INTERPRET=1`` triton executes fla's kernels on CPU tensors, so the adapters and fla's real
kernel code can be compared with ours here. fla's autotuner times its candidate configurations through a
GPU driver, which does not exist here: the script below replaces only that timer by a single run. fla
0.6's chunked kernels use constructs the interpreter rejects ('int' object has no attribute 'to' in
chunk_fwd_h, "mask has unsupported dtype" in the HGRN chunk kernel), so the chunk adapters are left to
the ``gpu``-marked tests; the fused-recurrent ones (also the one-token decode step) are checked here.
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

SCRIPT = textwrap.dedent("""
    import triton.runtime.autotuner as autotuner

    def _time_nothing(self):  # no GPU driver to time configurations with: run each once
        def bench(kernel_call, quantiles=None, **_):
            kernel_call()
            return [1.0, 1.0, 1.0] if quantiles else 1.0
        return bench

    autotuner.Autotuner.do_bench = property(_time_nothing)

    import torch
    import torch.nn.functional as F
    from kernels.ops.gla.chunk import chunk_gla_torch
    from kernels.ops.gla.fused_recurrent import _fla_fused_recurrent_gla
    from kernels.ops.hgrn.chunk import chunk_hgrn_torch
    from kernels.ops.hgrn.fused_recurrent import _fla_fused_recurrent_hgrn

    def check(name, actual, expected, tol=1e-5):
        for a, e in zip(actual, expected):
            torch.testing.assert_close(a, e, atol=tol, rtol=tol, msg=lambda m: f"{name}: {m}")
        print("ok", name)

    gen = torch.Generator().manual_seed(0)
    B, H, K, V, D = 2, 2, 16, 8, 32
    for T in (1, 37):
        q, k = (torch.randn(B, T, H, K, generator=gen) for _ in range(2))
        v = torch.randn(B, T, H, V, generator=gen)
        g = F.logsigmoid(torch.randn(B, T, H, K, generator=gen)) / 4
        h0 = torch.randn(B, H, K, V, generator=gen)
        check(f"gla T={T}", _fla_fused_recurrent_gla(q, k, v, g, K ** -0.5, h0, True),
              chunk_gla_torch(q, k, v, g, K ** -0.5, h0, True))
        x = torch.randn(B, T, D, generator=gen)
        gh = F.logsigmoid(torch.randn(B, T, D, generator=gen))
        s0 = torch.randn(B, D, generator=gen)
        check(f"hgrn T={T}", _fla_fused_recurrent_hgrn(x, gh, s0, True), chunk_hgrn_torch(x, gh, s0, True))
""")


def test_fla_fused_recurrent_kernels_match_ours_in_the_triton_interpreter():
    stdout = run_python(SCRIPT, env={**os.environ, "TRITON_INTERPRET": "1"})
    assert stdout.split() == ["ok", "gla", "T=1", "ok", "hgrn", "T=1", "ok", "gla", "T=37", "ok", "hgrn", "T=37"]
