"""Which headline claims the data support: a best value only where it is significantly better than every other
model, ties otherwise; models that predict one class for a whole set; what each mean over tasks includes.

How "significantly better" is decided, per kind of headline column (:func:`column_verdicts`):

- accuracy (GLUE, AdvGLUE, and the AdvGLUE score, whose sets are the AdvGLUE accuracies): the exact McNemar
  test of pairwise_significance.csv (Holm-corrected over the model pairs compared on the same items);
- robustness (attack success rate, paired and unpaired drop): the paired randomisation test of
  pairwise_robustness.csv (Holm likewise);
- a headline value is a mean over tasks (and seeds), so model A is significantly better than B only when A is
  ahead and significant in every task, evaluation set and seed the mean covers (an intersection-union test:
  level 0.05 without further correction, and conservative);
- latency, throughput and MFU at one sequence length: A's p10-p90 range wholly on the better side of B's, both
  from at least ``CLAIM_MIN_REPEATS`` timed repeats (kernels.report.tables);
- decode state and memory measured from tensors: exact sizes, so any difference is real;
- fine-tuning throughput (one median per run) and resident-set memory have no spread to compare: not ranked.

The best value is bold only when it is significantly better than every other model's; otherwise it and every
model not significantly worse than it are tied. A model that predicts one class for every item of a set that a
robustness mean covers is not ranked in that column: a constant prediction is never changed by a perturbation,
so its attack success rate and drops are 0 by construction, not robustness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from kernels.evaluation.tables import MAJORITY_METRIC
from kernels.report.significance import ALPHA
from kernels.report.tables import (CLAIM_MIN_REPEATS, EXACT_MEMORY_SOURCES, ReportData, largest_common_point,
                                   totals)

SET_NAMES = {"glue": "GLUE", "advglue": "AdvGLUE", "advglue_original": "AdvGLUE clean originals"}

# headline column (prefix) -> (metrics.csv metric, dataset) of the per-task values its mean covers
ACCURACY_COLUMNS = {"GLUE accuracy": ("accuracy", "glue"), "AdvGLUE accuracy": ("accuracy", "advglue"),
                    "AdvGLUE score": ("accuracy", "advglue")}
ROBUSTNESS_COLUMNS = {"Robustness drop (paired)": ("robustness_drop", "advglue"),
                      "Drop vs GLUE (unpaired)": ("robustness_drop_unpaired", "advglue"),
                      "Attack success rate": ("attack_success_rate", "advglue")}
# headline column (prefix) -> (mode, efficiency.csv column, how it is compared)
POINT_COLUMNS = {"Train tokens/s": ("train", "tokens_per_s", "time"), "Prefill ms": ("prefill", "median_ms", "time"),
                 "Prefill tokens/s": ("prefill", "tokens_per_s", "time"),  # the trade-off's, without train points
                 "Decode ms/token": ("decode", "median_ms", "time"), "Train MFU": ("train", "mfu", "time"),
                 "Decode state": ("decode", "state_mb", "exact"), "Train peak": ("train", "peak_mem_mb", "memory")}
NOT_RANKED = {"Fine-tune tokens/s": "one median per run, no spread to compare"}

HIGHER_IS_BETTER = ("GLUE accuracy", "AdvGLUE accuracy", "AdvGLUE score", "Train tokens/s", "Prefill tokens/s",
                    "Fine-tune tokens/s", "Train MFU")
LOWER_IS_BETTER = ("Robustness drop", "Drop vs GLUE", "Attack success rate", "Prefill ms", "Decode ms", "Decode state",
                   "Train peak")


def better_direction(column: str) -> str | None:
    """"max" or "min" when a headline column has a better end (marked in the page), else None."""
    if column.startswith(HIGHER_IS_BETTER):
        return "max"
    if column.startswith(LOWER_IS_BETTER):
        return "min"
    return None


@dataclass
class Verdict:
    """How one headline column was decided: ``best`` (bold; at most one model), ``tied`` (shaded), models left
    out (``unranked``, with why) and a sentence saying how."""

    best: list[str] = field(default_factory=list)
    tied: list[str] = field(default_factory=list)
    unranked: dict[str, str] = field(default_factory=dict)
    text: str = ""


# --- single-class predictions ---------------------------------------------------------------------------

def single_class_sets(metrics: pd.DataFrame | None) -> pd.DataFrame:
    """The (model, task, dataset, split) whose predictions are one class for every item, in at least one seed
    (metrics.csv's ``majority_prediction_share`` = 1), with ``seeds`` (how many) and ``of`` (seeds in all)."""
    columns = ["model", "task", "dataset", "split", "seeds", "of", "n"]
    if metrics is None or MAJORITY_METRIC not in set(metrics["metric"]):
        return pd.DataFrame(columns=columns)
    rows = metrics[metrics["metric"] == MAJORITY_METRIC]
    out = []
    for (model, task, dataset, split), group in rows.groupby(["model", "task", "dataset", "split"], sort=False):
        flagged = group[pd.to_numeric(group["value"], errors="coerce") >= 1.0 - 1e-12]
        if len(flagged):
            out.append({"model": model, "task": task, "dataset": dataset, "split": str(split),
                        "seeds": flagged["seed"].nunique(), "of": group["seed"].nunique(),
                        "n": int(pd.to_numeric(flagged["n"], errors="coerce").max())})
    return pd.DataFrame(out, columns=columns)


def _set_label(task: str, dataset: str, split: str) -> str:
    name = SET_NAMES.get(dataset, dataset)
    return f"{task} {name}" if dataset == "glue" or str(split) == str(task) else f"{task} {name} {split}"


def single_class_note(flags: pd.DataFrame, model: str) -> str:
    """e.g. ``rte GLUE, rte AdvGLUE`` (with ``in 1 of 3 seeds`` where not every seed); '' when none."""
    own = flags[(flags["model"] == model) & (flags["dataset"] != "advglue_original")]
    own = own.sort_values(["task", "dataset"], key=lambda c: c.map({"glue": 0, "advglue": 1}) if c.name == "dataset"
                          else c, kind="stable")
    parts = [_set_label(r.task, r.dataset, r.split) + ("" if r.seeds == r.of else f" (in {r.seeds} of {r.of} seeds)")
             for r in own.itertuples(index=False)]
    return ", ".join(parts)


def flagged_tasks(flags: pd.DataFrame, model: str, dataset: str) -> set[str]:
    """Tasks on which ``model`` predicts one class for an AdvGLUE set or its clean originals (robustness) or
    for ``dataset``."""
    datasets = {dataset} | ({"advglue_original"} if dataset == "advglue" else set())
    own = flags[(flags["model"] == model) & flags["dataset"].isin(datasets)]
    return set(own["task"])


# --- what a mean covers -------------------------------------------------------------------------------------

def mean_components(metrics: pd.DataFrame | None, metric: str, dataset: str) -> pd.DataFrame:
    """The per-task (per set) values each model's headline mean averages: totals() over seeds."""
    return totals(metrics, metric, (dataset,))


# --- pairwise decisions -----------------------------------------------------------------------------------

def _favours(rows: pd.DataFrame, winner: str, higher_is_better: bool) -> pd.Series:
    sign = rows["diff"].where(rows["model_a"] == winner, -rows["diff"])
    return sign > 0 if higher_is_better else sign < 0


def _tested_better(tests: pd.DataFrame | None, winner: str, loser: str, sets: set[tuple], higher: bool,
                   dataset: str | None = None, metric: str | None = None) -> tuple[bool, str]:
    """(significantly better on every covered set, a phrase with the Holm p-values) from a pairwise table."""
    if tests is None:
        return False, "no pairwise tests"
    rows = tests[((tests["model_a"] == winner) & (tests["model_b"] == loser))
                 | ((tests["model_a"] == loser) & (tests["model_b"] == winner))]
    rows = rows[rows["level"].astype(str) == "all"]
    if dataset is not None:
        rows = rows[rows["dataset"] == dataset]
    if metric is not None:
        rows = rows[rows["metric"] == metric]
    keys = {(str(t), str(s)) for t, s in zip(rows["task"], rows["split"])}
    if not rows.size or not sets <= keys:
        return False, "not tested on every set the mean covers"
    rows = rows[[(str(t), str(s)) in sets for t, s in zip(rows["task"], rows["split"])]]
    won = (rows["p_holm"] < ALPHA) & _favours(rows, winner, higher)
    detail = ", ".join(f"{t} p(Holm) {_p(p)}" for t, p in zip(rows["task"], rows["p_holm"]))
    return bool(won.all()), detail


def _p(p: float) -> str:
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def _interval(row: pd.Series, column: str, kind: str) -> tuple[float, float] | None:
    """The measured range of ``column`` at one point (None where it has no spread to compare against)."""
    value = float(row[column])
    if kind == "exact":
        return value, value
    if kind == "memory":
        return (value, value) if row.get("peak_mem_source") in EXACT_MEMORY_SOURCES else None
    repeats = pd.to_numeric(row.get("repeats"), errors="coerce")
    if pd.isna(repeats) or repeats < CLAIM_MIN_REPEATS:
        return None
    median, p10, p90 = float(row["median_ms"]), float(row["p10_ms"]), float(row["p90_ms"])
    if column == "median_ms":
        return p10, p90
    return value * median / p90, value * median / p10  # rates: the value scales with 1 / time


def _decide(values: pd.Series, higher: bool, better_than) -> tuple[list[str], list[str], list[str]]:
    """(best, tied, reasons) given ``better_than(a, b) -> (bool, phrase)`` over the models of ``values``."""
    values = values.dropna()
    if len(values) < 2:
        return [], [], []
    leader = values.idxmax() if higher else values.idxmin()
    beaten, reasons = [], []
    for other in values.index:
        if other == leader:
            continue
        won, phrase = better_than(leader, other)
        if won:
            beaten.append(other)
        reasons.append((other, won, phrase))
    if len(beaten) == len(values) - 1:
        return [leader], [], reasons
    return [], [leader] + [m for m in values.index if m != leader and m not in beaten], reasons


@dataclass
class Comparison:
    """How two models compare on one headline quantity: ``better(a, b) -> (a significantly better, phrase)``,
    what decides it (``how``), and the models that cannot be ranked on it (with why)."""

    better: Callable[[str, str], tuple[bool, str]] | None
    how: str
    unranked: dict[str, str] = field(default_factory=dict)


def comparison(data: ReportData, column: str, models: list[str]) -> Comparison | None:
    """The :class:`Comparison` of a headline column (by its prefix, module docstring) among ``models``; None
    for a column without one."""
    direction = better_direction(column)
    prefix = next((p for p in (*ACCURACY_COLUMNS, *ROBUSTNESS_COLUMNS, *POINT_COLUMNS, *NOT_RANKED)
                   if column.startswith(p)), None)
    if direction is None or prefix is None:
        return None
    higher = direction == "max"
    if prefix in NOT_RANKED:
        return Comparison(None, f"not ranked: {NOT_RANKED[prefix]}")
    if prefix in POINT_COLUMNS:
        return _point_comparison(data, *POINT_COLUMNS[prefix], higher)
    robustness = prefix in ROBUSTNESS_COLUMNS
    metric, dataset = (ROBUSTNESS_COLUMNS if robustness else ACCURACY_COLUMNS)[prefix]
    components = mean_components(data.get("metrics"), metric, dataset)
    covered = {m: {(str(t), str(s)) for t, s in zip(g["task"], g["split"])} for m, g in components.groupby("model")}
    unranked = {}
    if robustness:
        flags = single_class_sets(data.get("metrics"))
        for model in models:
            tasks = flagged_tasks(flags, model, dataset)
            if tasks:
                unranked[model] = f"predicts one class on {', '.join(sorted(tasks))}"
    tests = data.get("robustness_significance" if robustness else "significance")

    def better(a: str, b: str) -> tuple[bool, str]:
        sets = covered.get(a, set()) | covered.get(b, set())
        return _tested_better(tests, a, b, sets, higher, dataset=None if robustness else dataset,
                              metric=metric if robustness else None)

    return Comparison(better, "paired randomisation test, Holm" if robustness else "exact McNemar, Holm", unranked)


def _point_comparison(data: ReportData, mode: str, source: str, kind: str, higher: bool) -> Comparison:
    points = largest_common_point(data.get("efficiency"), mode)
    points = points.drop_duplicates("model").set_index("model") if len(points) else points
    if kind == "memory" and len(points) and not points.get("peak_mem_source", pd.Series(dtype=str)).isin(
            EXACT_MEMORY_SOURCES).all():
        return Comparison(None, "not ranked: memory from the resident set, one sample per point, no spread")

    def better(a: str, b: str) -> tuple[bool, str]:
        if a not in points.index or b not in points.index:
            return False, "not measured at this length"
        ranges = [_interval(points.loc[m], source, kind) for m in (a, b)]
        if None in ranges:
            return False, f"fewer than {CLAIM_MIN_REPEATS} repeats"
        (low_a, high_a), (low_b, high_b) = ranges
        apart = low_a > high_b if higher else high_a < low_b
        return apart, "ranges apart" if apart else "ranges overlap"

    how = {"time": f"p10-p90 ranges apart, at least {CLAIM_MIN_REPEATS} repeats", "exact": "exact sizes",
           "memory": "measured from tensors, exact"}[kind]
    return Comparison(better, how)


def column_verdicts(data: ReportData, table: pd.DataFrame, names: dict[str, str]) -> dict[str, Verdict]:
    """One :class:`Verdict` per headline column that has a better end (see the module docstring); ``table``
    is kernels.report.build.headline_table's, ``names`` maps its row labels back to model names."""
    verdicts = {}
    for column in table.columns:
        values = pd.to_numeric(table[column], errors="coerce").rename(index=names).dropna()
        compare = comparison(data, str(column), list(values.index))
        if compare is None:
            continue
        verdict = Verdict(unranked=dict(compare.unranked))
        if compare.better is None:
            verdict.text = compare.how
        else:
            values = values.drop(index=list(verdict.unranked), errors="ignore")
            verdict.best, verdict.tied, reasons = _decide(values, better_direction(str(column)) == "max",
                                                          compare.better)
            verdict.text = _verdict_text(verdict, reasons, compare.how, data.labels.get)
        verdicts[column] = verdict
    return verdicts


def _verdict_text(verdict: Verdict, reasons: list, how: str, label) -> str:
    name = lambda m: label(m, m)  # noqa: E731
    unranked = "; ".join(f"{name(m)} not ranked ({why})" for m, why in verdict.unranked.items())
    unranked = f"; {unranked}" if unranked else ""
    if verdict.best:
        return f"{name(verdict.best[0])} best, ahead of every other model beyond the noise ({how}){unranked}"
    if not verdict.tied:
        return f"no best: fewer than two models ranked{unranked}"
    within = "; ".join(f"{name(m)}: {phrase}" for m, won, phrase in reasons if not won)
    return (f"tie: {', '.join(name(m) for m in verdict.tied)} ({how}; {name(verdict.tied[0])} vs {within})"
            f"{unranked}")


def pairwise_noise(data: ReportData, objectives: dict[str, str], models: list[str],
                   values: pd.DataFrame) -> dict[tuple[str, str], dict[str, bool]]:
    """For every ordered pair (a, b) of ``models``: per objective (``values`` column -> headline column name
    that decides it), whether a is better than b beyond the noise (:func:`comparison`)."""
    found = {}
    for column, headline in objectives.items():
        compare = comparison(data, headline, models)
        for a in models:
            for b in models:
                if a == b:
                    continue
                won = compare is not None and compare.better is not None and compare.better(a, b)[0]
                found.setdefault((a, b), {})[column] = bool(won and values.loc[a, column] != values.loc[b, column])
    return found
