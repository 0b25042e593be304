"""Combine the per-model efficiency CSVs into the tables the report reads."""

from __future__ import annotations

import os
from typing import Iterable

import pandas as pd

from kernels.profiling.slopes import fit_slopes
from kernels.profiling.columns import COLUMNS, DESIGN_COLUMNS


def read_efficiency_csv(path: str | os.PathLike) -> pd.DataFrame:
    """One ``results/efficiency/{model}.csv``; a missing DESIGN.md column is an error naming the file."""
    frame = pd.read_csv(path)
    missing = [c for c in DESIGN_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: efficiency table lacks column(s) {missing}")
    return frame.reindex(columns=COLUMNS + [c for c in frame.columns if c not in COLUMNS])


def combine_efficiency(paths: Iterable[str | os.PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(all rows of all files, slope fits). Files are read in the given order."""
    frames = [read_efficiency_csv(path) for path in paths]
    frames = [f for f in frames if not f.empty]
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return combined, fit_slopes(combined)
