"""Combine the per-model efficiency CSVs into the tables the report reads."""

from __future__ import annotations

import os
from typing import Iterable

import pandas as pd

from kernels.profiling.slopes import fit_slopes
from kernels.profiling.columns import COLUMNS, DESIGN_COLUMNS, TABLE_COLUMNS


def read_efficiency_csv(path: str | os.PathLike) -> pd.DataFrame:
    """One ``results/efficiency/{model}.csv``; a missing DESIGN.md column is an error naming the file."""
    frame = pd.read_csv(path)
    missing = [c for c in DESIGN_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: efficiency table lacks column(s) {missing}")
    return frame.reindex(columns=COLUMNS + [c for c in frame.columns if c not in COLUMNS])


# The hardware a matmul peak belongs to: the same device kind, model, dtype and thread count.
PEAK_KEY = ["device", "device_name", "dtype", "threads"]


def with_common_peak(frame: pd.DataFrame) -> pd.DataFrame:
    """One MFU denominator for every model profiled on the same hardware.

    Each profile job measures the dense matmul peak before its points (``peak_gflops``). The jobs run one
    after another on the same machine (they reserve every core, or a whole node), so their peaks estimate
    the same number, and differ only by how much the machine let one sample reach it (20% apart in one demo
    run): dividing each model by its own would move its MFU by that much. So ``mfu_peak_gflops`` is the
    highest peak any job measured on that hardware (:data:`PEAK_KEY`; the best rate seen is the best estimate
    of a peak), and ``mfu = achieved_gflops / mfu_peak_gflops`` for every row; ``peak_gflops`` stays what the
    row's own job measured."""
    if frame.empty or "peak_gflops" not in frame.columns:
        return frame.assign(mfu_peak_gflops=pd.Series(dtype="float64"))
    keys = [c for c in PEAK_KEY if c in frame.columns]
    peaks = pd.to_numeric(frame["peak_gflops"], errors="coerce")
    common = peaks.groupby([frame[c].astype(str) for c in keys]).transform("max") if keys else peaks.max()
    achieved = pd.to_numeric(frame["achieved_gflops"], errors="coerce")
    return frame.assign(mfu_peak_gflops=common, mfu=achieved / common)


def combine_efficiency(paths: Iterable[str | os.PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(all rows of all files, slope fits). Files are read in the given order; every row's ``mfu`` is against
    the common peak of its hardware (:func:`with_common_peak`)."""
    frames = [read_efficiency_csv(path) for path in paths]
    frames = [f for f in frames if not f.empty]
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    combined = with_common_peak(combined)
    combined = combined.reindex(columns=TABLE_COLUMNS + [c for c in combined.columns if c not in TABLE_COLUMNS])
    return combined, fit_slopes(combined)
