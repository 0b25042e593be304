"""Bounded triton autotuning (kernels.ops.autotune): at most N candidate configurations per kernel."""

from __future__ import annotations

import importlib.util
import types

import pytest

from kernels.ops import autotune

needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")


@pytest.fixture
def restore_limit():
    previous = autotune.autotune_limit()
    yield
    if autotune._original_prune is not None:
        autotune.limit_autotune(previous)


def test_environment_value_is_read_or_refused():
    env = autotune.AUTOTUNE_CONFIGS_ENV
    assert autotune.limit_from_environment({}) is None
    assert autotune.limit_from_environment({env: "all"}) is None
    assert autotune.limit_from_environment({env: "0"}) is None
    assert autotune.limit_from_environment({env: " 3 "}) == 3
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(ValueError, match="KERNELS_AUTOTUNE_CONFIGS"):
            autotune.limit_from_environment({env: bad})


def _fake_tuner(configs):
    # the attributes triton's own Autotuner.prune_configs reads
    return types.SimpleNamespace(configs=configs, early_config_prune=None, perf_model=None, configs_top_k=1.0,
                                 nargs={})


@needs_triton
def test_limit_keeps_the_first_configs_of_triton_s_own_pruning(restore_limit):
    from triton.runtime.autotuner import Autotuner

    configs = [f"config{i}" for i in range(5)]
    autotune.limit_autotune(2)
    assert Autotuner.prune_configs(_fake_tuner(configs), {}) == ["config0", "config1"]
    autotune.limit_autotune(None)
    assert Autotuner.prune_configs(_fake_tuner(configs), {}) == configs
    autotune.limit_autotune(1)
    assert autotune.autotune_limit() == 1
    with pytest.raises(ValueError, match="positive number"):
        autotune.limit_autotune(0)


@needs_triton
@pytest.mark.skipif(importlib.util.find_spec("fla") is None, reason="fla is not installed")
def test_fla_s_own_autotuner_obeys_the_same_limit(restore_limit):
    """fla's CachedAutotuner (its layers' and its ops' kernels alike) inherits triton's prune_configs:
    one limit for every kernel, so our layers and fla's compare on the same compiled configurations."""
    from fla.ops.utils.cache import CachedAutotuner
    from triton.runtime.autotuner import Autotuner

    autotune.limit_autotune(1)
    assert CachedAutotuner.prune_configs is Autotuner.prune_configs
    assert CachedAutotuner.prune_configs(_fake_tuner(["a", "b"]), {}) == ["a"]
