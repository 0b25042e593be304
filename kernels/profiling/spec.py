"""What a profile job measures (a model spec), in a module without torch: the job process only hands it
to the CPU worker, which imports torch itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Builds the model from a model spec; "module:function" so that a forked worker can import it.
DEFAULT_BUILDER = "kernels.profiling.measure:build_model"


@dataclass(frozen=True)
class ModelSpec:
    """What to profile: a family with an architecture, or a pretrained checkpoint of that family."""

    family: str
    arch: dict[str, Any]
    vocab_size: int | None  # None for a pretrained checkpoint: its own vocabulary is used
    pretrained: str | None = None
    revision: str | None = None
    seed: int = 0
    builder: str = DEFAULT_BUILDER
