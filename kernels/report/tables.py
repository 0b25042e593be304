"""Reading the tidy result tables and deriving the per-model summaries the report shows."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kernels.evaluation.advglue import OFFICIAL_TASKS as OFFICIAL_ADVGLUE_TASKS  # the authors' five: the score needs all

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
    "robustness_significance": ["model_a", "model_b", "task", "seed", "split", "level", "metric", "n", "value_a",
                                "value_b", "diff", "p_value", "p_holm"],
}
# The tables whose rows belong to one model (a ``model`` column); the significance tables have two.
MODEL_COLUMNS = {"significance": ("model_a", "model_b"), "robustness_significance": ("model_a", "model_b")}


BOUNDED_METRICS = ("accuracy", "f1", "attack_success_rate")


@dataclass
class ReportData:
    """The input tables (None when absent or empty) and the notes about what is missing."""

    tables: dict[str, pd.DataFrame | None]
    labels: dict[str, str]
    notes: list[str] = field(default_factory=list)
    # task -> training examples used (rows of results/data/glue/{task}/train.parquet), where known
    train_counts: dict[str, int] = field(default_factory=dict)
    # the model the efficiency crossover compares against (the Transformer++), see baseline_model
    baseline: str | None = None

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


# The one interval every estimate of the report carries, named in every caption that shows one.
INTERVAL_NAME = "95% CI: two-level percentile bootstrap, seeds then items (one seed: items only)"
INTERVAL_SHORT = "95% CI, bootstrap over seeds then items"


def _seed_interval(group: pd.DataFrame) -> tuple[float, float]:
    """The 95% interval of the mean over seeds: metrics.csv's two-level bootstrap (``ci_*_over_seeds``); for
    tables without those columns, a single seed's own (item-bootstrap) interval, and none for several seeds
    (never an interval of another kind)."""
    if "ci_low_over_seeds" in group.columns:
        return float(group["ci_low_over_seeds"].iloc[0]), float(group["ci_high_over_seeds"].iloc[0])
    if len(group) == 1:
        return float(group["ci_low"].iloc[0]), float(group["ci_high"].iloc[0])
    return float("nan"), float("nan")


def aggregate_seeds(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per ``keys``: mean over seeds with its 95% interval (see :func:`_seed_interval`), the standard
    deviation over seeds (NaN for one seed), the number of seeds and, where the rows have ``n``, the
    smallest and largest item count over seeds (and ``skipped`` likewise, where the rows have it)."""
    rows = []
    for key, group in frame.groupby(keys, sort=False, dropna=False):
        values = pd.to_numeric(group["value"], errors="coerce")
        low, high = _seed_interval(group)
        spread = float(values.std(ddof=1)) if len(group) > 1 else float("nan")
        counts = group["n"].astype(float) if "n" in group.columns else pd.Series([float("nan")])
        skipped = group["skipped"].astype(float) if "skipped" in group.columns else pd.Series([float("nan")])
        rows.append(dict(zip(keys, key), value=float(values.mean()), ci_low=low, ci_high=high, std=spread,
                         seeds=group["seed"].nunique(), n_min=counts.min(), n_max=counts.max(),
                         skipped_min=skipped.min(), skipped_max=skipped.max()))
    return pd.DataFrame(rows, columns=keys + ["value", "ci_low", "ci_high", "std", "seeds", "n_min", "n_max",
                                              "skipped_min", "skipped_max"])


def totals(metrics: pd.DataFrame | None, metric: str, datasets: tuple[str, ...]) -> pd.DataFrame:
    """Rows of ``metric`` over whole sets (level and method ``all``) of ``datasets``, averaged over seeds."""
    if metrics is None:
        return pd.DataFrame(columns=["model", "task", "dataset", "split", "value", "ci_low", "ci_high", "std",
                                     "seeds", "n_min", "n_max", "skipped_min", "skipped_max"])
    rows = metrics[(metrics["metric"] == metric) & metrics["dataset"].isin(datasets)
                   & (metrics["level"].astype(str) == "all") & (metrics["method"].astype(str) == "all")]
    return aggregate_seeds(rows, ["model", "task", "dataset", "split"])


def score_scope(scores: pd.DataFrame | None, short: bool = False) -> str:
    """What the overall AdvGLUE score is: ``official`` only when every model's score covers all five tasks,
    else the tasks it averages, e.g. ``mean of sst2, rte: 2 of 5 tasks, not the official score`` (``short``:
    ``sst2, rte only``)."""
    if scores is None or scores.empty:
        return "not computed"
    complete = scores["complete"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes"))
    if complete.all():
        return "official"
    tasks = sorted({str(t) for t in scores["task"]} - {"overall"},
                   key=lambda t: OFFICIAL_ADVGLUE_TASKS.index(t) if t in OFFICIAL_ADVGLUE_TASKS else 99)
    if short:
        return f"{', '.join(tasks)} only"
    return f"mean of {', '.join(tasks)}: {len(tasks)} of {len(OFFICIAL_ADVGLUE_TASKS)} tasks, not the official score"


def set_names(frame: pd.DataFrame) -> pd.Series:
    """Display name of each evaluation set: GLUE / AdvGLUE, plus the split where a task has several."""
    names = {"glue": "GLUE", "advglue": "AdvGLUE", "advglue_original": "AdvGLUE original"}
    splits_per = frame.groupby(["task", "dataset"])["split"].transform("nunique")
    base = frame["dataset"].map(lambda d: names.get(d, d))
    return base.where(splits_per <= 1, base + " " + frame["split"].astype(str))


def per_model_mean(frame: pd.DataFrame) -> pd.Series:
    """Each model's mean over tasks, every task weighted once as in the official AdvGLUE score: a task with
    several sets (MNLI matched and mismatched, AdvGLUE mnli and mnli-mm) counts as the mean of its sets."""
    if frame.empty:
        return pd.Series(dtype=float)
    per_task = frame.groupby(["model", "task"])["value"].mean()
    return per_task.groupby(level="model").mean()


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


def train_counts(paths: list[str | os.PathLike] | None) -> dict[str, int]:
    """Training examples per task from ``results/data/glue/{task}/train.parquet`` files (their row counts, read
    from the parquet metadata without loading the data)."""
    import pyarrow.parquet as pq

    counts = {}
    for path in paths or []:
        path = Path(path)
        if path.name != "train.parquet":
            raise ValueError(f"{path}: expected a results/data/glue/{{task}}/train.parquet file")
        counts[path.parent.name] = int(pq.read_metadata(path).num_rows)
    return counts


def baseline_model(data: ReportData) -> str | None:
    """The model the linear-time models are compared with: ``data.baseline`` (the config's transformer_pp
    family), else a model named ``transformer_pp``, else None."""
    efficiency = data.get("efficiency")
    names = set(efficiency["model"]) if efficiency is not None else set()
    for name in (data.baseline, "transformer_pp"):
        if name is not None and name in names:
            return name
    return None


# What "faster" and "lighter" compare: median latency and peak memory of the same point.
CROSSOVER_QUANTITIES = {"faster": "median_ms", "lighter": "peak_mem_mb"}
CROSSOVER_COLUMNS = ["mode", "model", "quantity", "from_len", "longest", "batch_size"]
# A latency claim needs at least this many timed repeats on both sides: fewer make p10-p90 little more than the
# extremes of two or three samples (the demo's profile.min_repeats is set to it).
CLAIM_MIN_REPEATS = 5
# Memory measured without noise: the bytes of tensors (CPU) or CUDA's allocator counters. A resident-set
# growth (tables from before) is one sample per point with no spread to compare against, so no claim.
EXACT_MEMORY_SOURCES = ("tensors", "cuda_allocator")
CROSSOVER_RULE = (f"faster: the model's p90 latency is below the baseline's p10 (their p10-p90 ranges apart), "
                  f"both from at least {CLAIM_MIN_REPEATS} timed repeats; lighter: less peak memory, measured from "
                  "tensors (no measurement noise; resident-set growths are not compared)")


def _ran(row: pd.Series | None, column: str) -> bool:
    return row is not None and row.get("status", "ok") == "ok" and pd.notna(row.get(column))


def _outside_spread(row: pd.Series, base: pd.Series) -> bool:
    """Latency: ``row``'s p10-p90 range lies wholly below ``base``'s, both from enough repeats."""
    repeats = [pd.to_numeric(r.get("repeats"), errors="coerce") for r in (row, base)]
    if any(pd.isna(n) or n < CLAIM_MIN_REPEATS for n in repeats):
        return False
    return float(row["p90_ms"]) < float(base["p10_ms"])


def _exactly_less(row: pd.Series, base: pd.Series, column: str) -> bool:
    """Memory: less than the baseline's, both measured without noise (:data:`EXACT_MEMORY_SOURCES`)."""
    if any(r.get("peak_mem_source") not in EXACT_MEMORY_SOURCES for r in (row, base)):
        return False
    return float(row[column]) < float(base[column])


def _beats(row: pd.Series | None, base: pd.Series | None, column: str) -> bool:
    """``row`` is better (lower ``column``) than ``base`` at one length, beyond the measurement's noise
    (:data:`CROSSOVER_RULE`). A point the baseline could not run (out of memory) is won by a model that ran
    it; a point the model could not run is lost."""
    if not _ran(row, column):
        return False
    if not _ran(base, column):
        return True
    if column == "median_ms":
        return _outside_spread(row, base)
    return _exactly_less(row, base, column)


def crossover_lengths(efficiency: pd.DataFrame | None, baseline: str | None) -> pd.DataFrame:
    """Per mode, model (other than ``baseline``) and quantity (faster: median latency, lighter: peak memory):
    ``from_len``, the shortest profiled length from which the model beats the baseline beyond the noise
    (:func:`_beats`) at every longer length both attempted (NaN when it does not beat it at the longest), and
    ``longest``, that longest length. Smallest batch size."""
    if efficiency is None or baseline is None or baseline not in set(efficiency["model"]):
        return pd.DataFrame(columns=CROSSOVER_COLUMNS)
    rows = efficiency[efficiency["batch_size"] == efficiency["batch_size"].min()]
    out = []
    for mode, in_mode in rows.groupby("mode", sort=False):
        base = {int(r["seq_len"]): r for _, r in in_mode[in_mode["model"] == baseline].iterrows()}
        for model, own in in_mode[in_mode["model"] != baseline].groupby("model", sort=False):
            points = {int(r["seq_len"]): r for _, r in own.iterrows()}
            lengths = sorted(set(points) & set(base))
            if not lengths:
                continue
            for quantity, column in CROSSOVER_QUANTITIES.items():
                if column not in in_mode.columns:
                    continue
                start = float("nan")
                for length in reversed(lengths):
                    if not _beats(points[length], base[length], column):
                        break
                    start = length
                out.append({"mode": mode, "model": model, "quantity": quantity, "from_len": start,
                            "longest": lengths[-1], "batch_size": int(rows["batch_size"].min())})
    return pd.DataFrame(out, columns=CROSSOVER_COLUMNS)
