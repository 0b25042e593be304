"""Reading the tidy result tables and deriving the per-model summaries the report shows."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

TABLE_COLUMNS = {
    "metrics": ["model", "task", "seed", "dataset", "split", "level", "method", "metric", "value", "ci_low",
                "ci_high", "n"],
    "scores": ["model", "seed", "task", "score", "complete"],
    "throughput": ["model", "task", "seed", "steps", "tokens_per_s_median", "elapsed_s", "final_loss"],
    "efficiency": ["model", "device", "mode", "batch_size", "seq_len", "median_ms", "p10_ms", "p90_ms",
                   "tokens_per_s", "peak_mem_mb", "params"],
    "slopes": ["model", "device", "mode", "batch_size", "slope", "r2"],
    "significance": ["model_a", "model_b", "task", "seed", "dataset", "split", "level", "n", "acc_a", "acc_b",
                     "diff", "b", "c", "p_value", "p_holm"],
}
# The tables whose rows belong to one model (a ``model`` column); the significance table has two.
MODEL_COLUMNS = {"significance": ("model_a", "model_b")}


BOUNDED_METRICS = ("accuracy", "f1", "attack_success_rate")


@dataclass
class ReportData:
    """The input tables (None when absent or empty) and the notes about what is missing."""

    tables: dict[str, pd.DataFrame | None]
    labels: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def get(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)


def read_table(name: str, path: str | os.PathLike | None, notes: list[str]) -> pd.DataFrame | None:
    """A tidy table, or None (with a note) when the file is absent or has no rows.

    A table whose header lacks a required column is malformed, not missing: that is an error naming the
    file and the column."""
    if path is None or not Path(path).exists():
        notes.append(f"{name} table missing ({path or 'not given'}): its charts and columns are left empty.")
        return None
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        notes.append(f"{name} table {path} is empty.")
        return None
    missing = [c for c in TABLE_COLUMNS[name] if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: {name} table lacks column(s) {missing}")
    if frame.empty:
        notes.append(f"{name} table {path} has no rows.")
        return None
    for column in MODEL_COLUMNS.get(name, ("model",)):
        frame[column] = frame[column].astype(str)
    return frame


def model_order(labels: dict[str, str], tables: dict[str, pd.DataFrame | None]) -> dict[str, str]:
    """Model name -> label: the configured models first (in config order), then any other model found."""
    order = dict(labels)
    for table, frame in tables.items():
        if frame is not None:
            for column in MODEL_COLUMNS.get(table, ("model",)):
                for name in frame[column].unique():
                    order.setdefault(name, name)
    return order


def with_labels(frame: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    frame = frame.copy()
    frame["label"] = frame["model"].map(lambda name: labels.get(name, name))
    return frame


def _seed_interval(values: pd.Series, ci_low: pd.Series, ci_high: pd.Series) -> tuple[float, float, float]:
    """Mean over seeds; with one seed its own (bootstrap) CI, with several a 95% t-interval over seeds."""
    values = values.astype(float)
    mean = float(values.mean())
    if len(values) == 1:
        return mean, float(ci_low.iloc[0]), float(ci_high.iloc[0])
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def aggregate_seeds(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per ``keys``: mean over seeds with its 95% interval (see :func:`_seed_interval`), the standard
    deviation over seeds (NaN for one seed), the number of seeds and, where the rows have ``n``, the
    smallest and largest item count over seeds."""
    rows = []
    for key, group in frame.groupby(keys, sort=False, dropna=False):
        mean, low, high = _seed_interval(group["value"], group["ci_low"], group["ci_high"])
        spread = float(group["value"].astype(float).std(ddof=1)) if len(group) > 1 else float("nan")
        counts = group["n"].astype(float) if "n" in group.columns else pd.Series([float("nan")])
        rows.append(dict(zip(keys, key), value=mean, ci_low=low, ci_high=high, std=spread,
                         seeds=group["seed"].nunique(), n_min=counts.min(), n_max=counts.max()))
    return pd.DataFrame(rows, columns=keys + ["value", "ci_low", "ci_high", "std", "seeds", "n_min", "n_max"])


def totals(metrics: pd.DataFrame | None, metric: str, datasets: tuple[str, ...]) -> pd.DataFrame:
    """Rows of ``metric`` over whole sets (level and method ``all``) of ``datasets``, averaged over seeds."""
    if metrics is None:
        return pd.DataFrame(columns=["model", "task", "dataset", "split", "value", "ci_low", "ci_high", "std",
                                     "seeds", "n_min", "n_max"])
    rows = metrics[(metrics["metric"] == metric) & metrics["dataset"].isin(datasets)
                   & (metrics["level"].astype(str) == "all") & (metrics["method"].astype(str) == "all")]
    frame = aggregate_seeds(rows, ["model", "task", "dataset", "split"])
    if metric in BOUNDED_METRICS:
        # A t-interval over few seeds can leave [0, 1]; these metrics cannot.
        frame[["ci_low", "ci_high"]] = frame[["ci_low", "ci_high"]].clip(0.0, 1.0)
    return frame


def set_names(frame: pd.DataFrame) -> pd.Series:
    """Display name of each evaluation set: GLUE / AdvGLUE, plus the split where a task has several."""
    names = {"glue": "GLUE", "advglue": "AdvGLUE", "advglue_original": "AdvGLUE original"}
    splits_per = frame.groupby(["task", "dataset"])["split"].transform("nunique")
    base = frame["dataset"].map(lambda d: names.get(d, d))
    return base.where(splits_per <= 1, base + " " + frame["split"].astype(str))


def per_model_mean(frame: pd.DataFrame) -> pd.Series:
    """Mean over tasks (and splits) of each model's value."""
    return frame.groupby("model")["value"].mean()


def largest_common_point(efficiency: pd.DataFrame | None, mode: str) -> pd.DataFrame:
    """``mode`` rows at the largest sequence length every profiled model reached (smallest batch size)."""
    if efficiency is None:
        return pd.DataFrame()
    rows = efficiency[(efficiency["mode"] == mode) & efficiency["median_ms"].notna()]
    if "status" in rows.columns:
        rows = rows[rows["status"] == "ok"]
    if rows.empty:
        return rows
    rows = rows[rows["batch_size"] == rows["batch_size"].min()]
    models = rows["model"].nunique()
    per_length = rows.groupby("seq_len")["model"].nunique()
    common = per_length[per_length == models]
    length = common.index.max() if not common.empty else rows["seq_len"].max()
    return rows[rows["seq_len"] == length]


def pareto_flags(points: pd.DataFrame, objectives: list[str]) -> pd.Series:
    """True where no other row is at least as good on every objective and better on one (all maximised)."""
    values = points[objectives].to_numpy(dtype=float)
    flags = []
    for i, row in enumerate(values):
        others = np.delete(values, i, axis=0)
        dominated = np.any(np.all(others >= row, axis=1) & np.any(others > row, axis=1))
        flags.append(not dominated)
    return pd.Series(flags, index=points.index)


def dominators(points: pd.DataFrame, objectives: list[str]) -> pd.Series:
    """For each row, the index labels of the rows that dominate it (empty for Pareto-optimal rows)."""
    values = points[objectives].to_numpy(dtype=float)
    beaten_by = []
    for row in values:
        dominating = np.all(values >= row, axis=1) & np.any(values > row, axis=1)
        beaten_by.append([points.index[j] for j in np.flatnonzero(dominating)])
    return pd.Series(beaten_by, index=points.index)
