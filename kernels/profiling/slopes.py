"""Scaling exponents: least-squares fit of log(median_ms) = slope * log(seq_len) + intercept.

A slope near 1 means time linear in the sequence length, near 2 quadratic; for ``decode`` the time is
per token, so a slope near 0 means constant cost per token (recurrent state) and a positive slope a
cost that grows with the context (KV cache). ``slope_se`` is the slope's standard error; ``reliable`` flags
fits whose slope is known to about +-0.2 (``slope_se`` <= 0.1) over >= 3 lengths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUP_COLUMNS = ["model", "device", "mode", "batch_size"]
# A fit is reliable when its slope is known to about +-0.2 (95%): standard error at most RELIABLE_MAX_SE, over
# at least RELIABLE_MIN_POINTS lengths. Otherwise (noisy points, or a curve that is no power law, e.g. a cliff
# where a kernel changes path) its slope is not a scaling exponent and the report flags it. r^2 alone cannot
# decide: a flat curve (decode of a recurrent model, slope ~0) has r^2 ~0 however clean the points are.
RELIABLE_MAX_SE = 0.1
RELIABLE_MIN_POINTS = 3
# The MFU summary of the same points rides along (NaN for tables from before MFU was measured):
# median and best MFU over the fitted lengths, and the matmul peak they were measured against.
MFU_SUMMARY_COLUMNS = ["median_mfu", "max_mfu", "peak_gflops"]
SLOPE_COLUMNS = GROUP_COLUMNS + ["slope", "intercept", "r2", "n_points", "min_seq_len", "max_seq_len"
                                 ] + MFU_SUMMARY_COLUMNS + ["slope_se", "reliable"]


def is_reliable(slope_se: float, n_points: int) -> bool:
    """See :data:`RELIABLE_MAX_SE` and :data:`RELIABLE_MIN_POINTS`."""
    return bool(n_points >= RELIABLE_MIN_POINTS and np.isfinite(slope_se) and slope_se <= RELIABLE_MAX_SE)


def slope_standard_error(seq_lens, times_ms) -> float:
    """Standard error of the least-squares slope in log-log space (NaN with fewer than 3 points)."""
    x = np.log(np.asarray(seq_lens, dtype=float))
    y = np.log(np.asarray(times_ms, dtype=float))
    if x.size < 3:
        return float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    spread = ((x - x.mean()) ** 2).sum()
    return float(np.sqrt((residual ** 2).sum() / (x.size - 2) / spread)) if spread > 0 else float("nan")


def fit_loglog(seq_lens, times_ms) -> tuple[float, float, float]:
    """(slope, intercept, r2) of the least-squares line through (log seq_len, log time)."""
    x = np.log(np.asarray(seq_lens, dtype=float))
    y = np.log(np.asarray(times_ms, dtype=float))
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - (residual ** 2).sum() / total if total > 0 else 1.0
    return float(slope), float(intercept), float(r2)


def fit_slopes(efficiency: pd.DataFrame) -> pd.DataFrame:
    """One row per model x device x mode x batch size with at least two distinct measured lengths."""
    missing = [c for c in GROUP_COLUMNS + ["seq_len", "median_ms"] if c not in efficiency.columns]
    if missing:
        raise ValueError(f"efficiency table lacks column(s) {missing} needed for the slope fit")
    usable = efficiency[efficiency["median_ms"].notna() & (efficiency["median_ms"] > 0)]
    if "status" in usable.columns:
        usable = usable[usable["status"] == "ok"]
    rows = []
    for key, group in usable.groupby(GROUP_COLUMNS, sort=True):
        if group["seq_len"].nunique() < 2:
            continue
        slope, intercept, r2 = fit_loglog(group["seq_len"], group["median_ms"])
        rows.append(dict(zip(GROUP_COLUMNS, key), slope=slope, intercept=intercept, r2=r2,
                         n_points=len(group), min_seq_len=int(group["seq_len"].min()),
                         max_seq_len=int(group["seq_len"].max()), **mfu_summary(group),
                         slope_se=(se := slope_standard_error(group["seq_len"], group["median_ms"])),
                         reliable=is_reliable(se, len(group))))
    return pd.DataFrame(rows, columns=SLOPE_COLUMNS)


def mfu_summary(group: pd.DataFrame) -> dict[str, float]:
    """Median and best ``mfu`` of a group's points and the peak they are relative to: ``mfu_peak_gflops``
    (the common denominator of kernels.profiling.tables.with_common_peak) where the table has it, else the
    job's own ``peak_gflops`` (NaN where not measured)."""
    mfu = group["mfu"].dropna() if "mfu" in group.columns else pd.Series(dtype=float)
    column = "mfu_peak_gflops" if "mfu_peak_gflops" in group.columns else "peak_gflops"
    peak = group[column].dropna() if column in group.columns else pd.Series(dtype=float)
    return {"median_mfu": float(mfu.median()) if len(mfu) else float("nan"),
            "max_mfu": float(mfu.max()) if len(mfu) else float("nan"),
            "peak_gflops": float(peak.median()) if len(peak) else float("nan")}
