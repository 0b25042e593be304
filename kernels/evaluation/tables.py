"""Tidy CSV tables the report draws from (``results/tables/``).

Every table has one row per model x task x seed x quantity, plus three columns aggregating the
row's ``value`` (or ``score`` / ``tokens_per_s_median``) over the seeds of the same model, task and
quantity: ``n_seeds``, ``mean_over_seeds``, ``std_over_seeds`` (sample std, ddof=1; empty with
one seed). ``model_label`` is the display name from the config (``models[name].label``).

metrics.csv
    ``model, model_label, task, seed, dataset, split, level, method, metric, value, ci_low,
    ci_high, n, skipped, n_seeds, mean_over_seeds, std_over_seeds, ci_low_over_seeds,
    ci_high_over_seeds``.
    ``dataset``: glue / advglue / advglue_original; ``split``: GLUE split or AdvGLUE set;
    ``level``/``method``: AdvGLUE attack level/method, ``all`` for totals (and for GLUE rows);
    ``metric``: accuracy, f1 (qqp), attack_success_rate (over the items whose clean original is
    right; ``n`` = those items, ``skipped`` = items whose original is wrong), robustness_drop (paired:
    clean originals minus their adversarial versions, same items), paired_adversarial_accuracy (the
    accuracy on those adversarial versions: robustness_drop = advglue_original accuracy minus it),
    robustness_drop_unpaired (GLUE validation minus AdvGLUE accuracy) (all four on ``advglue`` rows;
    definitions in kernels.evaluation.evaluate). AdvGLUE accuracy per method is always within one level
    (``level`` and ``method`` both set). ``advglue_original`` rows are the accuracy on the clean originals of
    word/sentence items. ``majority_prediction_share`` (from the predictions, every dataset and split,
    no interval): the share of the items given the most frequent predicted class; 1.0 flags a model that
    predicts one class for the whole set. ``ci_low_over_seeds``, ``ci_high_over_seeds``: the 95% interval of
    ``mean_over_seeds``, a two-level percentile bootstrap (seeds, then items); with one seed the
    run's own item-bootstrap interval.
advglue_scores.csv
    ``model, model_label, seed, task, score, complete, n_seeds, mean_over_seeds,
    std_over_seeds``; ``task`` is an AdvGLUE task or ``overall`` (the official-style score over
    the evaluated tasks); ``complete`` says whether all five tasks were evaluated.
finetune_throughput.csv
    ``model, model_label, task, seed, steps, tokens_per_s_median, elapsed_s, final_loss,
    n_seeds, mean_over_seeds, std_over_seeds`` (aggregates of ``tokens_per_s_median``), from
    train_log.csv: ``steps`` is the last step, ``tokens_per_s_median`` the median of the logged
    rates, ``elapsed_s`` the total training time, ``final_loss`` the loss of the last row.
pairwise_significance.csv
    exact McNemar tests between every two models (no seed aggregates: one row per seed); columns
    and definitions in kernels.evaluation.significance.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

METRICS_COLUMNS = ["model", "model_label", "task", "seed", "dataset", "split", "level", "method", "metric",
                   "value", "ci_low", "ci_high", "n", "skipped"]
ROBUSTNESS_METRICS = ("attack_success_rate", "robustness_drop", "robustness_drop_unpaired")
SCORES_COLUMNS = ["model", "model_label", "seed", "task", "score", "complete"]
THROUGHPUT_COLUMNS = ["model", "model_label", "task", "seed", "steps", "tokens_per_s_median", "elapsed_s",
                      "final_loss"]
AGGREGATE_COLUMNS = ["n_seeds", "mean_over_seeds", "std_over_seeds"]
ALL = "all"

_RUN_PATH = re.compile(r"(?P<model>[^/]+)/(?P<task>[^/]+)/seed(?P<seed>\d+)/[^/]+$")
_SCORE_PATH = re.compile(r"(?P<model>[^/]+)/advglue_score_seed(?P<seed>\d+)\.json$")


def run_from_path(path: str | Path) -> tuple[str, str, int]:
    """(model, task, seed) of ``.../{model}/{task}/seed{seed}/<file>``."""
    match = _RUN_PATH.search(Path(path).as_posix())
    if not match:
        raise ValueError(f"{path}: cannot read model/task/seed from the path "
                         "(expected .../{model}/{task}/seed{seed}/<file>)")
    return match["model"], match["task"], int(match["seed"])


def _record(row: dict, m: dict, **where) -> dict:
    return {**row, **where, "value": m["value"], "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"),
            "n": m.get("n"), "skipped": m.get("skipped")}


def metrics_rows(metrics: dict, source: str = "metrics.json") -> list[dict]:
    """Tidy rows of one metrics.json (schema in kernels.evaluation.evaluate)."""
    for key in ("model", "task", "seed", "glue", "advglue"):
        if key not in metrics or (key in ("model", "task", "seed") and metrics[key] is None):
            raise ValueError(f"{source}: missing field {key!r}")
    base = {"model": metrics["model"], "task": metrics["task"], "seed": int(metrics["seed"])}
    rows = []
    for split, values in metrics["glue"].items():
        for name, m in values.items():
            rows.append(_record(base, m, dataset="glue", split=split, level=ALL, method=ALL, metric=name))
    for adv_set, block in metrics["advglue"].items():
        adv = dict(dataset="advglue", split=adv_set)
        for name, m in block["metrics"].items():
            rows.append(_record(base, m, **adv, level=ALL, method=ALL, metric=name))
        for level, values in block.get("by_level", {}).items():
            rows.append(_record(base, values["accuracy"], **adv, level=level, method=ALL, metric="accuracy"))
        for level, methods in block.get("by_level_method", {}).items():
            for method, values in methods.items():
                rows.append(_record(base, values["accuracy"], **adv, level=level, method=method, metric="accuracy"))
        if "original" in block:
            orig = dict(dataset="advglue_original", split=adv_set, method=ALL, metric="accuracy")
            # the same items' adversarial versions: the other half of the paired drop
            paired = dict(**adv, method=ALL, metric="paired_adversarial_accuracy")
            rows.append(_record(base, block["original"]["accuracy"], **orig, level=ALL))
            if "adversarial_accuracy" in block["original"]:
                rows.append(_record(base, block["original"]["adversarial_accuracy"], **paired, level=ALL))
            for level, values in block["original"].get("by_level", {}).items():
                rows.append(_record(base, values["accuracy"], **orig, level=level))
                if "adversarial_accuracy" in values:
                    rows.append(_record(base, values["adversarial_accuracy"], **paired, level=level))
        for name in ROBUSTNESS_METRICS:
            if name in block:
                rows.append(_record(base, block[name]["all"], **adv, level=ALL, method=ALL, metric=name))
                for level, m in block[name].get("by_level", {}).items():
                    rows.append(_record(base, m, **adv, level=level, method=ALL, metric=name))
    return rows


def add_seed_aggregates(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Append n_seeds / mean_over_seeds / std_over_seeds of ``value`` within each ``keys`` group."""
    if frame.empty:
        return frame.assign(**{c: pd.Series(dtype="float64") for c in AGGREGATE_COLUMNS})
    grouped = frame.groupby(keys, dropna=False, sort=False)[value]
    return frame.assign(n_seeds=grouped.transform("count"), mean_over_seeds=grouped.transform("mean"),
                        std_over_seeds=grouped.transform("std"))


def _labelled(frame: pd.DataFrame, labels: dict[str, str] | None) -> pd.DataFrame:
    labels = labels or {}
    frame = frame.copy()
    frame.insert(1, "model_label", [labels.get(m, m) for m in frame["model"]])
    return frame


def metrics_table(metrics_paths: Iterable[str | Path], labels: dict[str, str] | None = None,
                  predictions_paths: Iterable[str | Path] | None = None) -> pd.DataFrame:
    """metrics.csv: the rows of every metrics.json, their seed aggregates and the over-seeds interval.

    ``ci_low_over_seeds`` / ``ci_high_over_seeds``: a 95% two-level percentile bootstrap (seeds, then items;
    :func:`kernels.evaluation.metrics.two_level_bootstrap`) of ``mean_over_seeds``. With one seed it is that
    run's own item-bootstrap interval; with several it needs the runs' predictions (empty without them)."""
    rows, runs = [], {}
    for path in metrics_paths:
        metrics = json.loads(Path(path).read_text(encoding="utf-8"))
        rows.extend(metrics_rows(metrics, source=str(path)))
        runs[(metrics["model"], metrics["task"], int(metrics["seed"]))] = metrics.get("bootstrap") or {}
    predictions = {run_from_path(p): p for p in (predictions_paths or [])}
    for run in sorted(set(predictions) & set(runs)):
        rows.extend(majority_prediction_rows(pd.read_parquet(predictions[run]), *run))
    frame = pd.DataFrame(rows, columns=[c for c in METRICS_COLUMNS if c != "model_label"])
    frame = _labelled(frame, labels).sort_values(["model", "task", "seed", "dataset", "split", "metric",
                                                  "level", "method"], kind="stable", ignore_index=True)
    frame = add_seed_aggregates(frame, ["model", "task", "dataset", "split", "level", "method", "metric"], "value")
    return add_seed_intervals(frame, runs, predictions)


MAJORITY_METRIC = "majority_prediction_share"


def majority_prediction_rows(predictions: pd.DataFrame, model: str, task: str, seed: int) -> list[dict]:
    """metrics.csv rows of ``majority_prediction_share`` per evaluation set of one run: the share of its items
    given the most frequent predicted class (1.0: the model predicts one class for every item, so its accuracy
    is the share of that class and its attack success rate and drops are 0 by construction). No interval."""
    rows = []
    for (dataset, split), group in predictions.groupby(["dataset", "split"], sort=True):
        counts = group["pred"].value_counts()
        rows.append({"model": model, "task": task, "seed": int(seed), "dataset": dataset, "split": split,
                     "level": ALL, "method": ALL, "metric": MAJORITY_METRIC,
                     "value": float(counts.iloc[0] / len(group)), "ci_low": None, "ci_high": None,
                     "n": int(len(group)), "skipped": None})
    return rows


SEED_INTERVAL_COLUMNS = ["ci_low_over_seeds", "ci_high_over_seeds"]
ROW_KEY = ["dataset", "split", "level", "method", "metric"]


def add_seed_intervals(frame: pd.DataFrame, runs: dict[tuple, dict], predictions: dict[tuple, str | Path]
                       ) -> pd.DataFrame:
    """Fill ``ci_low_over_seeds`` / ``ci_high_over_seeds`` per model x task x row key (see metrics_table)."""
    if frame.empty:
        return frame.assign(**{c: pd.Series(dtype="float64") for c in SEED_INTERVAL_COLUMNS})
    single = (frame["n_seeds"] == 1).to_numpy()
    low = np.where(single, pd.to_numeric(frame["ci_low"], errors="coerce"), np.nan)
    high = np.where(single, pd.to_numeric(frame["ci_high"], errors="coerce"), np.nan)
    for (model, task), group in frame[~single].groupby(["model", "task"], sort=False):
        seeds = sorted(group["seed"].unique())
        if not all((model, task, int(s)) in predictions for s in seeds):
            continue  # several seeds without their predictions: no interval rather than a different kind
        intervals = _two_level_intervals(model, task, [int(s) for s in seeds], runs, predictions)
        for position, key in zip(frame.index.get_indexer(group.index), group[ROW_KEY].itertuples(index=False)):
            found = intervals.get(tuple(key), (None, None))
            low[position], high[position] = (np.nan if v is None else v for v in found)
    return frame.assign(ci_low_over_seeds=low, ci_high_over_seeds=high)


def _two_level_intervals(model: str, task: str, seeds: list[int], runs: dict[tuple, dict],
                         predictions: dict[tuple, str | Path]) -> dict[tuple, tuple]:
    from kernels.evaluation.evaluate import _seed_for, quantity_seed, run_quantities
    from kernels.evaluation.metrics import two_level_bootstrap

    per_run = {seed: run_quantities(pd.read_parquet(predictions[(model, task, seed)]), task) for seed in seeds}
    samples = min(int(runs[(model, task, seed)].get("samples", 0)) for seed in seeds)
    out = {}
    for key in sorted(set().union(*per_run.values())):
        present = [seed for seed in seeds if key in per_run[seed]]
        stats = [per_run[seed][key].stat for seed in present]
        bootstrap_seeds = [quantity_seed(int(runs[(model, task, seed)].get("seed", 0)), per_run[seed][key])
                           for seed in present]
        _, low, high = two_level_bootstrap(stats, bootstrap_seeds, samples, choice_seed=_seed_for(0, "seeds", *key))
        out[key] = (low, high)
    return out


def scores_table(score_paths: Iterable[str | Path], labels: dict[str, str] | None = None) -> pd.DataFrame:
    rows = []
    for path in score_paths:
        score = json.loads(Path(path).read_text(encoding="utf-8"))
        model, seed = score.get("model"), score.get("seed")
        if model is None or seed is None:
            match = _SCORE_PATH.search(Path(path).as_posix())
            if not match:
                raise ValueError(f"{path}: no 'model'/'seed' fields and none in the file name")
            model, seed = match["model"], int(match["seed"])
        for key in ("score", "per_task", "complete"):
            if key not in score:
                raise ValueError(f"{path}: missing field {key!r}")
        base = {"model": model, "seed": int(seed), "complete": bool(score["complete"])}
        rows.append({**base, "task": "overall", "score": score["score"]})
        rows.extend({**base, "task": task, "score": value} for task, value in score["per_task"].items())
    frame = pd.DataFrame(rows, columns=["model", "seed", "task", "score", "complete"])
    frame = _labelled(frame, labels)[SCORES_COLUMNS].sort_values(["model", "seed", "task"], kind="stable",
                                                                 ignore_index=True)
    return add_seed_aggregates(frame, ["model", "task"], "score")


def throughput_row(log: pd.DataFrame, source: str) -> dict:
    needed = ["step", "loss", "tokens_per_s", "elapsed_s"]
    missing = [c for c in needed if c not in log.columns]
    if missing or log.empty:
        raise ValueError(f"{source}: train log is empty or lacks column(s) {missing}")
    last = log.iloc[-1]
    return {"steps": int(last["step"]), "tokens_per_s_median": float(log["tokens_per_s"].median()),
            "elapsed_s": float(last["elapsed_s"]), "final_loss": float(last["loss"])}


def throughput_table(train_log_paths: Iterable[str | Path], labels: dict[str, str] | None = None) -> pd.DataFrame:
    rows = []
    for path in train_log_paths:
        model, task, seed = run_from_path(path)
        rows.append({"model": model, "task": task, "seed": seed,
                     **throughput_row(pd.read_csv(path), str(path))})
    frame = pd.DataFrame(rows, columns=[c for c in THROUGHPUT_COLUMNS if c != "model_label"])
    frame = _labelled(frame, labels).sort_values(["model", "task", "seed"], kind="stable", ignore_index=True)
    return add_seed_aggregates(frame, ["model", "task"], "tokens_per_s_median")
