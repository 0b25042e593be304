"""Bounded triton autotuning: at most N candidate configurations per kernel.

fla 0.6 ships no tuned configurations. The first call of each of its kernels per shape and dtype
compiles and times every candidate (124-322 per GLA path at the tests' and the paper's shapes, 1-6 s of
compilation each for sm_90), which is minutes before anything runs. ``limit_autotune(N)`` keeps the
first N candidates that triton's own pruning leaves (``Autotuner.prune_configs``, which every triton
autotuner calls, fla's ``CachedAutotuner`` included); with N = 1 triton skips the timing altogether.

The limit is set on triton's ``Autotuner`` class, so it holds for every kernel of the process alike:
fla's kernels reached through this package's adapters and fla's own layers keep the same candidates,
and a time ratio between the two compares the same compiled code. Tuned speed is given up for bounded
compile time; whoever reports a time says under which limit it was measured (:func:`autotune_limit`).

``KERNELS_AUTOTUNE_CONFIGS=N`` sets the limit when fla is first imported through
:mod:`kernels.ops.backend` (``0``, ``all`` or unset: triton's own behaviour).
"""

from __future__ import annotations

import os

AUTOTUNE_CONFIGS_ENV = "KERNELS_AUTOTUNE_CONFIGS"
_UNLIMITED_WORDS = {"", "0", "all", "none"}

_limit: int | None = None
_original_prune = None  # triton's own Autotuner.prune_configs, once wrapped


def autotune_limit() -> int | None:
    """The configurations kept per kernel (None: all of them)."""
    return _limit


def limit_from_environment(environ=os.environ) -> int | None:
    """The limit ``$KERNELS_AUTOTUNE_CONFIGS`` asks for (None: no limit); a clear error for other values."""
    raw = environ.get(AUTOTUNE_CONFIGS_ENV, "").strip().lower()
    if raw in _UNLIMITED_WORDS:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"environment variable {AUTOTUNE_CONFIGS_ENV}={environ[AUTOTUNE_CONFIGS_ENV]!r}: "
                         "expected a number of configurations per kernel (1, 2, ...) or 0 / 'all' for no limit")
    return value or None


def limit_autotune(max_configs: int | None) -> None:
    """Keep at most ``max_configs`` candidate configurations per triton autotuned kernel (None: all).

    Needs triton; affects every autotuner of the process from its next tuning on (kernels already tuned
    for a shape keep their choice)."""
    global _limit, _original_prune
    if max_configs is not None and (not isinstance(max_configs, int) or max_configs < 1):
        raise ValueError(f"limit_autotune: expected a positive number of configurations or None, got {max_configs!r}")
    from triton.runtime.autotuner import Autotuner

    if _original_prune is None:
        _original_prune = Autotuner.prune_configs

        def prune_configs(self, *args, **kwargs):
            configs = _original_prune(self, *args, **kwargs)
            return configs if _limit is None else list(configs)[:_limit]

        prune_configs.__wrapped__ = _original_prune
        Autotuner.prune_configs = prune_configs
    _limit = max_configs


def apply_environment_limit() -> int | None:
    """Set the limit from ``$KERNELS_AUTOTUNE_CONFIGS`` when it asks for one; return the limit in force."""
    wanted = limit_from_environment()
    if wanted is not None and wanted != _limit:
        limit_autotune(wanted)
    return _limit
