"""The per-model robustness tables: AdvGLUE task score, accuracy per perturbation level with 95% CIs and
item counts, the share of the most frequent prediction (a model that predicts one class is flagged), attack
success rate (over the items whose clean original is right, with the skipped count), the paired robustness drop
(headline) and the unpaired one; and accuracy per attack method within its level."""

from __future__ import annotations

import math

import pandas as pd

from kernels.report.claims import MAJORITY_METRIC, single_class_sets
from kernels.report.tables import ReportData, aggregate_seeds

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


def level_metric(metrics: pd.DataFrame | None, metric: str, dataset: str = "advglue",
                 by_method: bool = False) -> pd.DataFrame:
    """``metric`` of ``dataset`` per model, AdvGLUE set (split) and level, aggregated over seeds: all methods
    together, or with ``by_method`` one row per (level, method) cell."""
    keys = ["model", "task", "split", "level"] + (["method"] if by_method else [])
    if metrics is None:
        return aggregate_seeds(pd.DataFrame(columns=keys + ["seed", "value", "ci_low", "ci_high", "n"]), keys)
    methods = metrics["method"].astype(str)
    rows = metrics[(metrics["dataset"] == dataset) & (metrics["metric"] == metric)
                   & ((methods != "all") & (metrics["level"].astype(str) != "all") if by_method else methods == "all")]
    return aggregate_seeds(rows.assign(level=rows["level"].astype(str), split=rows["split"].astype(str),
                                       method=rows["method"].astype(str)), keys)


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


def _cells(row: pd.Series | None, title: str, count_title: str | None = None,
           skipped_title: str | None = None) -> dict[str, str]:
    """The estimate cell under ``title`` and, with ``count_title``, its item count (``skipped_title``: the
    items left out of it, e.g. attacks skipped because the clean original was already wrong)."""
    cells = {title: DASH if row is None else estimate_cell(row["value"], row["ci_low"], row["ci_high"], row["std"])}
    if count_title:
        cells[count_title] = DASH if row is None else count_cell(row["n_min"], row["n_max"])
    if skipped_title:
        cells[skipped_title] = DASH if row is None else count_cell(row["skipped_min"], row["skipped_max"])
    return cells


def _score_cell(scores: pd.DataFrame, model: str, split: str, task: str) -> str:
    row = _lookup(scores, {"model": model, "task": split})
    if row is None:
        row = _lookup(scores, {"model": model, "task": task})
    if row is None:
        return DASH
    return estimate_cell(row["value"], float("nan"), float("nan"), row["std"])


# The set's AdvGLUE task score (the official per-task metric; "official" is kept for the five-task score).
SCORE = "AdvGLUE task score"
ACCURACY = "Accuracy [95% CI]"
MAJORITY = "Most frequent prediction (share)"
ASR = "Attack success rate [95% CI]"
PAIRED_DROP = "Robustness drop, paired [95% CI]"
UNPAIRED_DROP = "Drop vs GLUE validation, unpaired [95% CI]"


def robustness_table(data: ReportData) -> pd.DataFrame:
    """Rows: model x AdvGLUE set x perturbation level. Columns: official score (whole-set rows), accuracy
    [95% CI] with its item count, attack success rate [95% CI] with the items attacked (clean original right)
    and skipped (clean original wrong), the paired robustness drop (clean originals minus their adversarial
    versions, same items) with its item count, the unpaired drop (GLUE validation minus AdvGLUE) and the
    number of seeds."""
    metrics = data.get("metrics")
    accuracy = level_metric(metrics, "accuracy")
    if accuracy.empty:
        return pd.DataFrame()
    success, drop = level_metric(metrics, "attack_success_rate"), level_metric(metrics, "robustness_drop")
    unpaired = level_metric(metrics, "robustness_drop_unpaired")
    scores = _official_scores(data.get("scores"))
    majority, flags = level_metric(metrics, MAJORITY_METRIC), single_class_sets(metrics)
    rows = []
    for model, task, split in _sets(accuracy, data):
        levels = set(accuracy[(accuracy["model"] == model) & (accuracy["split"] == split)]["level"])
        for level in [lv for lv in LEVELS if lv in levels] + sorted(levels - set(LEVELS)):
            key = {"model": model, "task": task, "split": split, "level": level}
            found = _lookup(accuracy, key)
            row = {"Model": data.labels.get(model, model), "AdvGLUE set": split,
                   "Level": LEVEL_NAMES.get(level, level),
                   SCORE: _score_cell(scores, model, split, task) if level == "all" else ""}
            row.update(_cells(found, ACCURACY, "Items"))
            row[MAJORITY] = _majority_cell(majority, flags, key) if level == "all" else ""
            row.update(_cells(_lookup(success, key), ASR, "Attacked (original right)", "Skipped (original wrong)"))
            row.update(_cells(_lookup(drop, key), PAIRED_DROP, "Paired items"))
            row.update(_cells(_lookup(unpaired, key), UNPAIRED_DROP))
            row["Seeds"] = str(int(found["seeds"])) if found is not None and not math.isnan(found["seeds"]) else DASH
            rows.append(row)
    return blank_repeats(pd.DataFrame(rows), ["Model", "AdvGLUE set"])


def _majority_cell(majority: pd.DataFrame, flags: pd.DataFrame, key: dict) -> str:
    """The share of the set's AdvGLUE items given the most frequent class (mean over seeds), flagged ``⚠ one
    class`` where the model predicts one class for every AdvGLUE item or every clean original of the set, in
    some seed (kernels.report.claims.single_class_sets)."""
    rows = majority[(majority["model"] == key["model"]) & (majority["split"].astype(str) == str(key["split"]))]
    if rows.empty:
        return DASH
    flagged = flags[(flags["model"] == key["model"]) & (flags["split"].astype(str) == str(key["split"]))
                    & flags["dataset"].isin(["advglue", "advglue_original"])]
    return f"{float(rows['value'].iloc[0]):.3f}" + (" ⚠ one class" if len(flagged) else "")


def _sets(frame: pd.DataFrame, data: ReportData) -> list[tuple]:
    """(model, task, AdvGLUE set) in the models' display order."""
    order = {name: i for i, name in enumerate(data.labels)}
    sets = frame[["model", "task", "split"]].drop_duplicates()
    sets = sets.sort_values(["model", "task", "split"], key=lambda c: c.map(order) if c.name == "model" else c)
    return list(sets.itertuples(index=False, name=None))


def method_table(data: ReportData) -> pd.DataFrame:
    """AdvGLUE accuracy per model, set, level and attack method (a method only within its level: CheckList and
    StressTest occur at both sentence and human level), with item counts."""
    cells = level_metric(data.get("metrics"), "accuracy", by_method=True)
    if cells.empty:
        return pd.DataFrame()
    level_rank = {name: i for i, name in enumerate(LEVELS)}
    rows = []
    for model, task, split in _sets(cells, data):
        block = cells[(cells["model"] == model) & (cells["split"] == split)]
        block = block.sort_values(["level", "method"], key=lambda c: c.map(level_rank) if c.name == "level" else c)
        for found in block.itertuples(index=False):
            row = {"Model": data.labels.get(model, model), "AdvGLUE set": split,
                   "Level": LEVEL_NAMES.get(found.level, found.level), "Method": found.method}
            row.update(_cells(pd.Series(found._asdict()), ACCURACY, "Items"))
            rows.append(row)
    return blank_repeats(pd.DataFrame(rows), ["Model", "AdvGLUE set", "Level"])


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
