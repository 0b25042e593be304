"""Hugging Face ships an unrelated package imported as `kernels`; transformers must never take ours for it."""

import importlib.metadata

import kernels


def test_transformers_does_not_take_our_package_for_hf_kernels():
    from transformers.utils import import_utils

    assert import_utils.is_kernels_available() is False


def test_our_distribution_version_is_below_hf_kernels_minimum():
    from packaging import version
    from transformers.utils.import_utils import KERNELS_MIN_VERSION

    ours = importlib.metadata.version("resilient-efficient-llms")
    assert ours == kernels.__version__
    assert version.parse(ours) < version.parse(KERNELS_MIN_VERSION)
