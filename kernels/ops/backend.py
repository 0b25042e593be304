"""Choice between fla's triton kernels and this package's pure-PyTorch kernels.

fla (flash-linear-attention) only runs on CUDA. The pure-PyTorch kernels run anywhere and are the
reference. The fla path is used only when all three hold:

* every tensor handed to the op is on a CUDA device,
* ``fla`` can be imported,
* the pure-PyTorch path is not forced, either by :func:`set_force_torch` or by the environment
  variable ``KERNELS_FORCE_TORCH=1`` (the workflow's config key ``kernels.force_torch`` sets it).

:func:`set_force_torch` wins over the environment variable; ``set_force_torch(None)`` hands the
decision back to the environment.
"""

from __future__ import annotations

import functools
import importlib
import os

import torch

FORCE_TORCH_ENV = "KERNELS_FORCE_TORCH"
_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"", "0", "false", "no", "off"}

# None: follow the environment variable; True/False: explicit override from code.
_force_torch_override: bool | None = None


def set_force_torch(force: bool | None) -> None:
    """Force (True) or allow (False) the pure-PyTorch path; None defers to $KERNELS_FORCE_TORCH."""
    global _force_torch_override
    if force is not None and not isinstance(force, bool):
        raise TypeError(f"kernels.ops.backend.set_force_torch: expected bool or None, got {force!r}")
    _force_torch_override = force


def torch_forced() -> bool:
    """True when the pure-PyTorch kernels must be used even where fla could run."""
    if _force_torch_override is not None:
        return _force_torch_override
    raw = os.environ.get(FORCE_TORCH_ENV, "").strip().lower()
    if raw in _TRUE_WORDS:
        return True
    if raw in _FALSE_WORDS:
        return False
    raise ValueError(
        f"environment variable {FORCE_TORCH_ENV}={os.environ[FORCE_TORCH_ENV]!r}: "
        f"expected one of {sorted(_TRUE_WORDS | (_FALSE_WORDS - {''}))}"
    )


@functools.lru_cache(maxsize=None)
def fla_available() -> bool:
    """True when fla's op modules import (fla needs triton; importing it on CPU-only builds may fail)."""
    try:
        importlib.import_module("fla.ops.gla")
        importlib.import_module("fla.ops.hgrn")
    except Exception:  # ImportError, or triton failing to initialise: either way fla is unusable
        return False
    return True


def use_fla(*tensors: torch.Tensor | None) -> bool:
    """Whether an op given these tensors (None entries are ignored) should dispatch to fla."""
    present = [t for t in tensors if t is not None]
    if not present or not all(t.is_cuda for t in present):
        return False
    if torch_forced():
        return False
    return fla_available()
