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

import collections
import functools
import hashlib
import importlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch itself is imported by whoever holds tensors; the profile job process never needs it
    import torch

FORCE_TORCH_ENV = "KERNELS_FORCE_TORCH"
_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"", "0", "false", "no", "off"}

# None: follow the environment variable; True/False: explicit override from code.
_force_torch_override: bool | None = None

# fla's ops that the adapters (the ``_fla_*`` functions of kernels.ops.gla / kernels.ops.hgrn) call.
FLA_OPS = ("chunk_gla", "fused_recurrent_gla", "chunk_hgrn", "fused_recurrent_hgrn")
# Calls of fla's kernels in this process, per op (counted by the adapters as they call fla).
_fla_calls: collections.Counter[str] = collections.Counter()


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
def fla_import_error() -> str | None:
    """Why fla's op modules cannot be used (``"ModuleNotFoundError: ..."``), or None when they import.

    fla needs triton, and a triton that does not match torch fails at import: any exception means
    the fla path is unusable, and its text is what a user needs to mend the environment. Once fla
    imports, ``$KERNELS_AUTOTUNE_CONFIGS`` (:mod:`kernels.ops.autotune`) bounds its autotuning.
    """
    try:
        importlib.import_module("fla.ops.gla")
        importlib.import_module("fla.ops.hgrn")
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed silently
        return f"{type(exc).__name__}: {exc}"
    from kernels.ops.autotune import apply_environment_limit

    apply_environment_limit()
    return None


def fla_available() -> bool:
    """True when fla's op modules import (fla needs triton; importing it on CPU-only builds may fail)."""
    return fla_import_error() is None


def count_fla_call(op: str) -> None:
    """Record that an adapter handed ``op`` (one of :data:`FLA_OPS`) to fla's triton kernel.

    This is the evidence that fla's kernels *ran*: ``kernel_provenance`` only says that they would be
    chosen (CUDA, fla importable, not forced off), which stays true for a model that never reaches them."""
    if op not in FLA_OPS:
        raise ValueError(f"count_fla_call: unknown fla op {op!r}; known: {FLA_OPS}")
    _fla_calls[op] += 1


def fla_kernel_calls() -> dict[str, int]:
    """Calls of each of fla's ops in this process so far (every op of :data:`FLA_OPS`, zeros included)."""
    return {op: _fla_calls[op] for op in FLA_OPS}


def fla_calls_since(before: dict[str, int]) -> dict[str, int]:
    """Calls per op since the snapshot ``before`` (a :func:`fla_kernel_calls` result)."""
    now = fla_kernel_calls()
    return {op: now[op] - before.get(op, 0) for op in FLA_OPS}


def fla_call_record(before: dict[str, int] | None = None) -> dict[str, int | dict[str, int]]:
    """Provenance fields of fla's calls since ``before`` (default: since the process started):
    ``fla_kernel_calls`` (their total) and ``fla_kernel_calls_by_op``."""
    calls = fla_calls_since(before or {})
    return {"fla_kernel_calls": sum(calls.values()), "fla_kernel_calls_by_op": calls}


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def kernel_provenance(device: str | torch.device) -> dict[str, str | None]:
    """Which GLA / HGRN kernels a model on ``device`` runs, for every output that reports a number.

    ``kernels`` is ``"fla"`` (fla's triton ops) or ``"torch"`` (this package's pure-PyTorch ops);
    ``kernels_reason`` says why the torch ops run when they do; the fla-core and triton versions are
    those installed (None when absent), so a number can be traced to the code that produced it.
    """
    device_type = str(device).split(":", 1)[0]  # "cuda:1" -> "cuda"; a torch.device prints the same way
    if device_type != "cuda":
        kernels, reason = "torch", f"device {device_type} (fla's triton kernels run on CUDA only)"
    elif torch_forced():
        kernels, reason = "torch", "forced (kernels.force_torch / KERNELS_FORCE_TORCH)"
    elif not fla_available():
        kernels, reason = "torch", f"fla unavailable: {fla_import_error()}"
    else:
        kernels, reason = "fla", None
    fla_version = _distribution_version("fla-core") or _distribution_version("flash-linear-attention")
    return {"kernels": kernels, "kernels_reason": reason, "fla_version": fla_version,
            "triton_version": _distribution_version("triton"), "torch_version": _torch_version(),
            **software_versions()}


@functools.lru_cache(maxsize=None)
def software_versions() -> dict[str, str | None]:
    """The other libraries a number depends on, and the code's version (``code_version``, see
    :func:`code_version`): a demo accuracy that moves can be traced to what changed."""
    versions = {f"{name}_version": _distribution_version(name) for name in ("transformers", "tokenizers", "numpy")}
    return {**versions, "code_version": code_version()}


PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the ``kernels`` package


def code_version(package_dir: Path = PACKAGE_DIR) -> str | None:
    """The checkout's ``git describe --always --dirty``; outside a git checkout (an exported copy on a
    cluster node, an unpacked archive, no git installed) ``src-`` and the first 12 hex digits of a SHA-256
    over the package's Python sources (:func:`package_source_hash`), so a number still names its code."""
    return _git_describe(package_dir.parent) or f"src-{package_source_hash(package_dir)[:12]}"


def _git_describe(checkout: Path) -> str | None:
    # --git-dir/--work-tree pinned to this checkout: an enclosing repository (a copy of the code placed
    # inside some other project's git tree) must not lend it its commit
    if not (checkout / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def package_source_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 (hex) over every ``*.py`` file of the package: its path relative to the package and its
    bytes, in sorted order (caches such as ``__pycache__`` do not count)."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir).as_posix()
        if "__pycache__" in relative.split("/"):
            continue
        digest.update(relative.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _torch_version() -> str | None:
    # torch.__version__ when torch is loaded (it names local builds exactly), else the installed distribution's
    torch = sys.modules.get("torch")
    return torch.__version__ if torch is not None else _distribution_version("torch")


def require_fla(device: str | torch.device) -> None:
    """Raise when fla's kernels would not run on ``device`` (config ``kernels.require_fla``).

    Paper-scale numbers are meant to come from fla's kernels; a silent fallback to the reference
    ops would change every efficiency number without a trace.
    """
    info = kernel_provenance(device)
    if info["kernels"] != "fla":
        raise RuntimeError(
            "config kernels.require_fla is true, but fla's triton kernels will not run: "
            f"{info['kernels_reason']}. Install the GPU extra (pip install -e '.[gpu]', fla-core with a "
            "triton matching torch) on a CUDA machine, or set kernels.require_fla: false.")


def use_fla(*tensors: torch.Tensor | None) -> bool:
    """Whether an op given these tensors (None entries are ignored) should dispatch to fla."""
    present = [t for t in tensors if t is not None]
    if not present or not all(t.is_cuda for t in present):
        return False
    if torch_forced():
        return False
    return fla_available()
