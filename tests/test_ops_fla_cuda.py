"""fla's triton kernels on CUDA through this package's adapters, inside whole classifiers (``gpu`` marker).

The same comparisons as the interpreter tests (``tests/fla_checks.py``), on the device they are for, in bf16
autocast as paper scale fine-tunes and evaluates: logits and every parameter gradient of a right-padded
batch, activation checkpointing, a prefill followed by one decode step. ``benchmarks/gpu_check.sh`` runs
them (with ``KERNELS_AUTOTUNE_CONFIGS`` bounding the compilation); without CUDA they skip.

Only torch, triton, pytest and this package are imported here: the check collects the ``gpu`` tests on a
node that has nothing else.
"""

from __future__ import annotations

import pytest
import torch

from kernels.ops import backend

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    # a string: evaluated only when CUDA is there (pytest stops at the first skip), so that collecting the
    # gpu tests on a machine without CUDA never imports fla
    pytest.mark.skipif("not backend.fla_available()", reason="needs fla (kernels.ops.backend.fla_import_error())"),
]


@pytest.fixture(autouse=True)
def dispatch_follows_the_device():
    backend.set_force_torch(None)
    yield
    backend.set_force_torch(None)


@pytest.mark.parametrize("family", ["gla", "mmfree"])
def test_classifier_on_fla_kernels_matches_the_torch_ops_in_bf16(family):
    import fla_checks

    # bf16 autocast: both paths round to bf16 at different points (fla inside its kernels, ours around the
    # fp32 recurrence), so differences of bf16's resolution (8 bits of mantissa) are expected
    fla_checks.compare_classifier(family, "cuda", torch.bfloat16, 2e-2)
