"""Validated profiling settings (the ``profile`` section of the config)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MODES = ("train", "prefill", "decode")
DEVICES = ("cpu", "cuda", "auto")
# The autocast dtypes of the fine-tuning recipe that train points follow (float16 would need loss scaling).
DTYPES = ("float32", "bfloat16")


class SettingsError(ValueError):
    """A profiling setting is missing or has a bad value; the message names the field."""


@dataclass(frozen=True)
class ProfileSettings:
    modes: tuple[str, ...] = MODES
    seq_lens: tuple[int, ...] = (64, 128, 256, 512)
    batch_sizes: tuple[int, ...] = (1,)
    decode_tokens: int = 32
    warmup: int = 2
    min_repeats: int = 3
    # Timed samples per point (training steps, prefills, decoded tokens): at least min_repeats; no new
    # run starts after max_repeats, so that fast points do not spin for the whole budget.
    max_repeats: int = 50
    time_budget_s: float = 2.0
    threads: int = 1
    device: str = "cpu"
    dtype: str = "float32"
    # CPU only: each point may grow its data segment by at most this many MiB (RLIMIT_DATA in the
    # child process); an allocation beyond it is recorded as an out-of-memory point. None = no limit.
    memory_limit_mb: float | None = None
    seed: int = 0
    # CPU: flush subnormal floats to zero. Gradients that decay along a long sequence (recurrent models, the
    # loss on the last token) reach the subnormal range, where x86 arithmetic is 10-100x slower: without it a
    # GLA training step at 2,048 tokens takes 15x the time of one at 1,024, an artefact of the CPU's float
    # mode, not of the model (the values flushed are below 1.2e-38). No effect on CUDA.
    flush_denormal: bool = True
    # The fine-tuning recipe of train points (the workflow copies them from its finetune section).
    lr: float = 1e-3
    weight_decay: float = 0.01
    max_grad_norm: float | None = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive_int_list(source: str, name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise SettingsError(f"{source}: field {name!r} must be a non-empty list of positive integers, got {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise SettingsError(f"{source}: field {name!r} must hold positive integers, got {item!r}")
    return tuple(value)


def _int_at_least(source: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError(f"{source}: field {name!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _boolean(source: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{source}: field {name!r} must be true or false, got {value!r}")
    return value


def _choice(source: str, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SettingsError(f"{source}: field {name!r} must be one of {list(allowed)}, got {value!r}")
    return value


def settings_from_dict(raw: dict[str, Any] | None, source: str = "profile settings") -> ProfileSettings:
    """Build :class:`ProfileSettings` from a config dict; unknown keys are an error (typos would be silent)."""
    raw = dict(raw or {})
    known = set(ProfileSettings.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(f"{source}: unknown field(s) {unknown}; known: {sorted(known)}")
    defaults = ProfileSettings()
    get = lambda name: raw.get(name, getattr(defaults, name))  # noqa: E731

    modes = get("modes")
    if not isinstance(modes, (list, tuple)) or not modes:
        raise SettingsError(f"{source}: field 'modes' must be a non-empty list of {list(MODES)}, got {modes!r}")
    for mode in modes:
        _choice(source, "modes", mode, MODES)
    budget = get("time_budget_s")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0:
        raise SettingsError(f"{source}: field 'time_budget_s' must be a number >= 0, got {budget!r}")
    limit = get("memory_limit_mb")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0):
        raise SettingsError(f"{source}: field 'memory_limit_mb' must be a positive number or null, got {limit!r}")
    for name in ("lr", "weight_decay", "max_grad_norm"):
        value = get(name)
        if (value is None and name == "max_grad_norm") or (
                not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0):
            continue
        raise SettingsError(f"{source}: field {name!r} must be a number >= 0, got {value!r}")
    min_repeats = _int_at_least(source, "min_repeats", get("min_repeats"), 1)
    max_repeats = _int_at_least(source, "max_repeats", get("max_repeats"), 1)
    if max_repeats < min_repeats:
        raise SettingsError(f"{source}: field 'max_repeats' ({max_repeats}) is below 'min_repeats' ({min_repeats})")
    return ProfileSettings(
        modes=tuple(dict.fromkeys(modes)),
        seq_lens=_positive_int_list(source, "seq_lens", get("seq_lens")),
        batch_sizes=_positive_int_list(source, "batch_sizes", get("batch_sizes")),
        decode_tokens=_int_at_least(source, "decode_tokens", get("decode_tokens"), 1),
        warmup=_int_at_least(source, "warmup", get("warmup"), 0),
        min_repeats=min_repeats,
        max_repeats=max_repeats,
        time_budget_s=float(budget),
        threads=_int_at_least(source, "threads", get("threads"), 1),
        device=_choice(source, "device", get("device"), DEVICES),
        dtype=_choice(source, "dtype", get("dtype"), DTYPES),
        memory_limit_mb=None if limit is None else float(limit),
        seed=_int_at_least(source, "seed", get("seed"), 0),
        flush_denormal=_boolean(source, "flush_denormal", get("flush_denormal")),
        lr=float(get("lr")),
        weight_decay=float(get("weight_decay")),
        max_grad_norm=None if get("max_grad_norm") is None else float(get("max_grad_norm")),
    )
