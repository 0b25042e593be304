"""The per-model robustness table: official AdvGLUE score, accuracy per perturbation level with 95% CIs and
item counts, attack success rate and robustness drop (issue 4's summary, one block of rows per model)."""

from __future__ import annotations

import math

import pandas as pd

from kernels.report.tables import BOUNDED_METRICS, ReportData, aggregate_seeds

LEVELS = ["all", "word", "sentence", "human"]
LEVEL_NAMES = {"all": "all levels", "word": "word", "sentence": "sentence", "human": "human-crafted"}
DASH = "–"


def estimate_cell(value: float, low: float, high: float, std: float = float("nan"), digits: int = 3) -> str:
    """``value [low, high]``; with several seeds ``mean ± sd [low, high]`` (sd over seeds)."""
    if value is None or pd.isna(value):
        return DASH
    spread = f" ± {std:.{digits}f}" if not pd.isna(std) else ""
    interval = f" [{low:.{digits}f}, {high:.{digits}f}]" if not (pd.isna(low) or pd.isna(high)) else ""
    return f"{value:.{digits}f}{spread}{interval}"


def count_cell(n_min: float, n_max: float) -> str:
    """Item count; a range where seeds differ (e.g. items the model answered correctly)."""
    if pd.isna(n_min):
        return DASH
    if pd.isna(n_max) or n_min == n_max:
        return f"{int(n_min):,}"
    return f"{int(n_min):,}–{int(n_max):,}"


def level_metric(metrics: pd.DataFrame | None, metric: str, dataset: str = "advglue") -> pd.DataFrame:
    """``metric`` of ``dataset`` per model, AdvGLUE set (split) and level (all methods), aggregated over seeds."""
    keys = ["model", "task", "split", "level"]
    if metrics is None:
        return pd.DataFrame(columns=keys + ["value", "ci_low", "ci_high", "std", "seeds", "n_min", "n_max"])
    rows = metrics[(metrics["dataset"] == dataset) & (metrics["metric"] == metric)
                   & (metrics["method"].astype(str) == "all")]
    frame = aggregate_seeds(rows.assign(level=rows["level"].astype(str), split=rows["split"].astype(str)), keys)
    if metric in BOUNDED_METRICS:
        frame[["ci_low", "ci_high"]] = frame[["ci_low", "ci_high"]].clip(0.0, 1.0)
    return frame


def _official_scores(scores: pd.DataFrame | None) -> pd.DataFrame:
    """Mean official AdvGLUE score over seeds (and its sd) per model and AdvGLUE set."""
    if scores is None:
        return pd.DataFrame(columns=["model", "task", "value", "std"])
    grouped = scores.groupby(["model", "task"])["score"]
    return pd.DataFrame({"value": grouped.mean(), "std": grouped.std(ddof=1)}).reset_index()


def _lookup(frame: pd.DataFrame, key: dict) -> pd.Series | None:
    mask = pd.Series(True, index=frame.index)
    for column, value in key.items():
        mask &= frame[column].astype(str) == str(value)
    rows = frame[mask]
    return rows.iloc[0] if len(rows) else None


def _cells(row: pd.Series | None, title: str, count_title: str | None = None) -> dict[str, str]:
    """The estimate cell under ``title`` and, with ``count_title``, its item count."""
    cells = {title: DASH if row is None else estimate_cell(row["value"], row["ci_low"], row["ci_high"], row["std"])}
    if count_title:
        cells[count_title] = DASH if row is None else count_cell(row["n_min"], row["n_max"])
    return cells


def _score_cell(scores: pd.DataFrame, model: str, split: str, task: str) -> str:
    row = _lookup(scores, {"model": model, "task": split})
    if row is None:
        row = _lookup(scores, {"model": model, "task": task})
    if row is None:
        return DASH
    return estimate_cell(row["value"], float("nan"), float("nan"), row["std"])


def robustness_table(data: ReportData) -> pd.DataFrame:
    """Rows: model x AdvGLUE set x perturbation level. Columns: official score (whole-set rows), accuracy
    [95% CI] with its item count, attack success rate [95% CI] with the items that have a clean original,
    robustness drop [95% CI] and the number of seeds."""
    metrics = data.get("metrics")
    accuracy = level_metric(metrics, "accuracy")
    if accuracy.empty:
        return pd.DataFrame()
    success, drop = level_metric(metrics, "attack_success_rate"), level_metric(metrics, "robustness_drop")
    scores = _official_scores(data.get("scores"))
    order = {name: i for i, name in enumerate(data.labels)}
    sets = accuracy[["model", "task", "split"]].drop_duplicates()
    sets = sets.sort_values(["model", "task", "split"], key=lambda c: c.map(order) if c.name == "model" else c)
    rows = []
    for model, task, split in sets.itertuples(index=False):
        levels = set(accuracy[(accuracy["model"] == model) & (accuracy["split"] == split)]["level"])
        for level in [lv for lv in LEVELS if lv in levels] + sorted(levels - set(LEVELS)):
            key = {"model": model, "task": task, "split": split, "level": level}
            found = _lookup(accuracy, key)
            row = {"Model": data.labels.get(model, model), "AdvGLUE set": split,
                   "Level": LEVEL_NAMES.get(level, level),
                   "Official score": _score_cell(scores, model, split, task) if level == "all" else ""}
            row.update(_cells(found, "Accuracy [95% CI]", "Items"))
            row.update(_cells(_lookup(success, key), "Attack success rate [95% CI]", "Items with an original"))
            row.update(_cells(_lookup(drop, key), "Robustness drop [95% CI]"))
            row["Seeds"] = str(int(found["seeds"])) if found is not None and not math.isnan(found["seeds"]) else DASH
            rows.append(row)
    return blank_repeats(pd.DataFrame(rows), ["Model", "AdvGLUE set"])


def blank_repeats(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Show a model (and set) name only on the first row of its block, like a grouped table."""
    table = table.copy()
    previous: tuple = ()
    for i in range(len(table)):
        current = tuple(table.iloc[i][c] for c in columns)
        shown = [value if previous[:j + 1] != current[:j + 1] else "" for j, value in enumerate(current)]
        previous = current
        for column, value in zip(columns, shown):
            table.iat[i, table.columns.get_loc(column)] = value
    return table
