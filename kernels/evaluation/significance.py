"""Paired significance between models evaluated on the same items, and a check that metrics.json
can be recomputed from predictions.parquet.

Two models' predictions for one task and seed are matched item by item on ``(dataset, split,
idx)``. On each set of matched items (one GLUE split; one AdvGLUE set, whole or one attack level;
the clean originals of one AdvGLUE set, whole or one level) the exact McNemar test compares the
two accuracies using only the discordant items:

- ``b``: items model A gets right and model B gets wrong; ``c``: the reverse.
- Under H0 (equal accuracy) each discordant item is equally likely to favour either model, so
  ``b ~ Binomial(b + c, 1/2)`` and the two-sided p-value is
  ``p = min(1, 2 * BinomCDF(min(b, c); b + c, 1/2))``; ``p = 1`` when ``b + c = 0``.
- ``p_holm``: Holm's step-down correction over the model pairs of one family, i.e. one
  (task, seed, dataset, split, level); it controls the family-wise error rate when several pairs
  of models are compared on the same items.

pairwise_significance.csv
    ``model_a, model_b, task, seed, dataset, split, level, n, acc_a, acc_b, diff, b, c, p_value,
    significant, p_holm``: one row per pair of models (in the order the models are given, i.e.
    the config's) x task x seed x item set. ``level`` is ``all`` for a whole set (and for GLUE);
    ``diff = acc_a - acc_b = (b - c) / n``; ``significant`` is ``p_value < alpha`` (0.05).
    Seeds are kept apart: each seed is its own fine-tuning run.

pairwise_robustness.csv
    The robustness quantities of two models on the same AdvGLUE items: ``model_a, model_b, task, seed,
    split, level, metric, n, value_a, value_b, diff, p_value, significant, p_holm, permutations``, one row
    per pair x task x seed x AdvGLUE set (``level`` ``all``) x ``metric`` in :data:`ROBUSTNESS_METRICS`
    (attack success rate, paired robustness drop, unpaired drop; definitions in
    kernels.evaluation.evaluate), ``diff = value_a - value_b``, ``n`` the set's items with a clean
    original (the unpaired drop: the AdvGLUE items). These are not accuracies on one item set, so no
    McNemar: a paired randomisation test. Under H0 (the two models are exchangeable on every item) each
    item's outcomes (clean original and adversarial, for the unpaired drop also every GLUE validation
    item) may belong to either model, so the observed ``diff`` is compared with ``permutations`` seeded
    draws that swap the two models' outcomes item by item with probability 1/2:
    ``p = (1 + #{|diff*| >= |diff|}) / (1 + permutations)``. A draw whose quantity is undefined (no item
    attacked) counts as not as extreme. ``p_holm``: Holm over the pairs of one (task, seed, split, level,
    metric). Rows where a model's value is undefined are left out.
"""

from __future__ import annotations

import itertools
import json
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd
from scipy.stats import binom

from kernels.evaluation.metrics import ItemStatistic, accuracy, binary_f1
from kernels.evaluation.tables import ALL, ROBUSTNESS_METRICS, run_from_path

ALPHA = 0.05
ITEM_KEY = ["dataset", "split", "idx"]
FAMILY_KEY = ["task", "seed", "dataset", "split", "level"]
SIGNIFICANCE_COLUMNS = ["model_a", "model_b", *FAMILY_KEY, "n", "acc_a", "acc_b", "diff", "b", "c",
                        "p_value", "significant", "p_holm"]
_NEEDED = [*ITEM_KEY, "label", "pred", "level"]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``."""
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    if b + c == 0:
        return 1.0  # no discordant item: no evidence either way
    return float(min(1.0, 2.0 * binom.cdf(min(b, c), b + c, 0.5)))


def holm_adjust(p_values: Iterable[float]) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input order.

    With the m p-values sorted ascending, the i-th (1-based) becomes
    ``min(1, max_{j <= i} (m - j + 1) * p_(j))``; the running max keeps the adjusted values in the
    same order as the raw ones.
    """
    p = np.asarray(list(p_values), dtype=np.float64)
    if p.size == 0:
        return p
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    order = np.argsort(p, kind="stable")
    m = p.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def read_predictions(path: str | Path) -> pd.DataFrame:
    """predictions.parquet with its columns checked and one row per item."""
    frame = pd.read_parquet(path)
    missing = [c for c in _NEEDED if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} (schema in kernels/evaluation/evaluate.py)")
    duplicated = frame.duplicated(ITEM_KEY)
    if duplicated.any():
        first = frame.loc[duplicated, ITEM_KEY].iloc[0].tolist()
        raise ValueError(f"{path}: {int(duplicated.sum())} duplicated item(s) on {ITEM_KEY}, first {first}")
    return frame


def _describe(keys: pd.DataFrame, limit: int = 3) -> str:
    shown = [tuple(row) for row in keys.head(limit).itertuples(index=False)]
    return f"{len(keys)} item(s), e.g. {shown}"


def paired_items(a: pd.DataFrame, b: pd.DataFrame, source_a: str = "a", source_b: str = "b") -> pd.DataFrame:
    """The items of two prediction frames side by side: ``dataset, split, idx, level, label, pred_a,
    pred_b``. Both frames must cover exactly the same items with the same labels and levels."""
    left = a[[*ITEM_KEY, "level", "label", "pred"]]
    right = b[[*ITEM_KEY, "level", "label", "pred"]]
    merged = left.merge(right, on=ITEM_KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    only_a = merged.loc[merged["_merge"] == "left_only", ITEM_KEY]
    only_b = merged.loc[merged["_merge"] == "right_only", ITEM_KEY]
    if len(only_a) or len(only_b):
        raise ValueError(f"{source_a} and {source_b} cover different items (matched on {ITEM_KEY}): "
                         f"only in the first: {_describe(only_a)}; only in the second: {_describe(only_b)}")
    for column in ("label", "level"):
        first, second = merged[f"{column}_a"], merged[f"{column}_b"]
        # null levels (GLUE rows) compare equal to each other
        differ = ~((first == second).fillna(False) | (first.isna() & second.isna()))
        if differ.any():
            raise ValueError(f"{source_a} and {source_b}: {column}s disagree on "
                             f"{_describe(merged.loc[differ, ITEM_KEY])}")
    return merged.rename(columns={"label_a": "label", "level_a": "level"})[
        [*ITEM_KEY, "level", "label", "pred_a", "pred_b"]]


def _item_sets(paired: pd.DataFrame):
    """(dataset, split, level, rows) for each whole set and, where annotated, each of its levels."""
    for (dataset, split), rows in paired.groupby(["dataset", "split"], sort=True):
        yield dataset, split, ALL, rows
        for level, level_rows in rows.dropna(subset=["level"]).groupby("level", sort=True):
            yield dataset, split, level, level_rows


def compare_pair(paired: pd.DataFrame, alpha: float = ALPHA) -> list[dict]:
    """McNemar rows (without model/task/seed) for every item set of one pair of models."""
    rows = []
    for dataset, split, level, items in _item_sets(paired):
        right_a = (items["pred_a"] == items["label"]).to_numpy()
        right_b = (items["pred_b"] == items["label"]).to_numpy()
        b, c = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
        n = len(items)
        p = mcnemar_exact(b, c)
        acc_a, acc_b = float(right_a.mean()), float(right_b.mean())
        rows.append({"dataset": dataset, "split": split, "level": level, "n": n, "acc_a": acc_a,
                     "acc_b": acc_b, "diff": acc_a - acc_b, "b": b, "c": c, "p_value": p,
                     "significant": bool(p < alpha)})
    return rows


def _runs_by_task_seed(prediction_paths: Iterable[str | Path]) -> dict[tuple[str, int], dict[str, Path]]:
    """{(task, seed): {model: path}}, models in the order they first appear."""
    runs: dict[tuple[str, int], dict[str, Path]] = {}
    for path in prediction_paths:
        model, task, seed = run_from_path(path)
        models = runs.setdefault((task, seed), {})
        if model in models:
            raise ValueError(f"{path}: a second predictions file for model {model}, task {task}, seed {seed} "
                             f"(first: {models[model]})")
        models[model] = Path(path)
    return runs


PairIterator = Iterator[tuple[str, str, pd.DataFrame]]


def _model_pairs(paths: list[str | Path], frames: dict[Path, pd.DataFrame] | None = None
                 ) -> Iterator[tuple[str, int, dict[str, pd.DataFrame], PairIterator]]:
    """Per (task, seed), in the order of :func:`_runs_by_task_seed`: ``(task, seed, frames, pairs)``
    with ``frames`` {model: predictions} in the given (config) model order, each file read once, and
    ``pairs`` a lazy iterator of ``(model_a, model_b, paired_items(...))`` over every two of those
    models (the item check of :func:`paired_items` runs once per pair, as the pair is reached).
    ``frames`` (keyed by path) is a cache: files already in it are not read again, new ones are added."""
    cache = {} if frames is None else frames
    first_seen = {run_from_path(p)[0]: None for p in paths}  # the given (config) model order
    position = {model: i for i, model in enumerate(first_seen)}
    for (task, seed), by_model in _runs_by_task_seed(paths).items():
        models = sorted(by_model, key=position.__getitem__)
        for m in models:
            if by_model[m] not in cache:
                cache[by_model[m]] = read_predictions(by_model[m])
        run_frames = {m: cache[by_model[m]] for m in models}
        yield task, seed, run_frames, _pairs(run_frames, by_model)


def _pairs(run_frames: dict[str, pd.DataFrame], by_model: dict[str, Path]) -> PairIterator:
    """``(model_a, model_b, paired_items(...))`` for every two models of ``run_frames``, in its order."""
    for model_a, model_b in itertools.combinations(run_frames, 2):
        yield model_a, model_b, paired_items(run_frames[model_a], run_frames[model_b],
                                             str(by_model[model_a]), str(by_model[model_b]))


def _with_holm(rows: list[dict], columns: list[str], family: list[str]) -> pd.DataFrame:
    """``rows`` as a frame with ``columns`` and ``p_holm``: Holm over ``p_value`` within each ``family``."""
    frame = pd.DataFrame(rows, columns=columns)
    frame["p_holm"] = (frame.groupby(family, sort=False)["p_value"].transform(holm_adjust)
                       if len(frame) else pd.Series(dtype="float64"))
    return frame


def significance_table(prediction_paths: Iterable[str | Path], alpha: float = ALPHA, *,
                       frames: dict[Path, pd.DataFrame] | None = None) -> pd.DataFrame:
    """pairwise_significance.csv (see module docstring) from ``.../{model}/{task}/seed{seed}/
    predictions.parquet`` files; every pair of models with the same task and seed is compared.
    ``frames``: an optional {path: predictions} cache shared with :func:`robustness_significance_table`."""
    rows = []
    for task, seed, _, pairs in _model_pairs(list(prediction_paths), frames):
        for model_a, model_b, paired in pairs:
            base = {"model_a": model_a, "model_b": model_b, "task": task, "seed": seed}
            rows.extend({**base, **row} for row in compare_pair(paired, alpha))
    frame = _with_holm(rows, SIGNIFICANCE_COLUMNS[:-1], FAMILY_KEY)
    return frame.astype({"seed": "int64", "n": "int64", "b": "int64", "c": "int64", "significant": "bool"})


# --- robustness quantities between two models: paired randomisation tests -----------------------

ROBUSTNESS_KEY = ["task", "seed", "split", "level", "metric"]
ROBUSTNESS_COLUMNS = ["model_a", "model_b", *ROBUSTNESS_KEY, "n", "value_a", "value_b", "diff", "p_value",
                      "significant", "p_holm", "permutations"]
PERMUTATIONS = 10_000
_PERMUTATION_CHUNK = 500


def _aligned(first: ItemStatistic, second: ItemStatistic) -> None:
    shapes = ([s.shape for s in first.samples], [s.shape for s in second.samples])
    if shapes[0] != shapes[1]:
        raise ValueError(f"paired randomisation test needs the same items for both models, got shapes {shapes}")


def permutation_p_value(first: ItemStatistic, second: ItemStatistic, permutations: int = PERMUTATIONS,
                        seed: int = 0) -> float:
    """Two-sided p-value of ``first.value() - second.value()`` under the paired randomisation test of the
    module docstring: item ``i`` of every sample keeps its row in both statistics, and each draw gives it to
    either model with probability 1/2."""
    _aligned(first, second)
    observed = first.value() - second.value()
    if not np.isfinite(observed):
        return float("nan")
    rng = np.random.default_rng(seed)
    extreme, done = 0, 0
    while done < permutations:
        count = min(_PERMUTATION_CHUNK, permutations - done)
        means_a, means_b = [], []
        for a, b in zip(first.samples, second.samples):
            swap = (rng.random((count, a.shape[0])) < 0.5)[:, :, None]
            means_a.append(np.where(swap, b[None], a[None]).mean(axis=1))
            means_b.append(np.where(swap, a[None], b[None]).mean(axis=1))
        with np.errstate(invalid="ignore"):
            drawn = first.statistic(means_a) - second.statistic(means_b)
        # a tolerance: a draw that equals the observed difference up to rounding is as extreme
        extreme += int(np.sum(np.abs(drawn) >= abs(observed) - 1e-12))
        done += count
    return float((1 + extreme) / (1 + permutations))


def _test_seed(*key) -> int:
    return zlib.crc32("/".join(map(str, key)).encode()) % (2**32)


def _advglue_quantities(predictions: pd.DataFrame, task: str) -> dict[tuple, Any]:
    from kernels.evaluation.evaluate import run_quantities

    # Sorted by item so that both models' per-item rows line up (run_quantities keeps the input order).
    ordered = predictions.sort_values(ITEM_KEY, kind="stable", ignore_index=True)
    return {(split, metric): q for (dataset, split, level, _, metric), q in run_quantities(ordered, task).items()
            if dataset == "advglue" and level == ALL and metric in ROBUSTNESS_METRICS}


def robustness_significance_table(prediction_paths: Iterable[str | Path], alpha: float = ALPHA,
                                  permutations: int = PERMUTATIONS, *,
                                  frames: dict[Path, pd.DataFrame] | None = None) -> pd.DataFrame:
    """pairwise_robustness.csv (see module docstring) from the same predictions.parquet files as
    :func:`significance_table` (``frames``: the same optional {path: predictions} cache)."""
    rows = []
    for task, seed, run_frames, pairs in _model_pairs(list(prediction_paths), frames):
        quantities = {m: _advglue_quantities(frame, task) for m, frame in run_frames.items()}
        for model_a, model_b, _ in pairs:  # the pair's items checked, as for significance_table
            for (split, metric), qa in quantities[model_a].items():
                qb = quantities[model_b].get((split, metric))
                if qb is None or qa.stat.n == 0 or qb.stat.n == 0:
                    continue
                value_a, value_b = qa.stat.value(), qb.stat.value()
                if not (np.isfinite(value_a) and np.isfinite(value_b)):
                    continue
                p = permutation_p_value(qa.stat, qb.stat, permutations,
                                        _test_seed(task, seed, split, metric, model_a, model_b))
                rows.append({"model_a": model_a, "model_b": model_b, "task": task, "seed": seed, "split": split,
                             "level": ALL, "metric": metric, "n": int(qa.stat.samples[-1].shape[0]),
                             "value_a": value_a, "value_b": value_b, "diff": value_a - value_b, "p_value": p,
                             "significant": bool(p < alpha), "permutations": int(permutations)})
    frame = _with_holm(rows, [c for c in ROBUSTNESS_COLUMNS if c != "p_holm"], ROBUSTNESS_KEY)
    return frame[ROBUSTNESS_COLUMNS].astype({"seed": "int64", "n": "int64", "significant": "bool",
                                             "permutations": "int64"})


# --- metrics.json <-> predictions.parquet consistency -------------------------------------------

def _scores(rows: pd.DataFrame, metric: str) -> tuple[float, int]:
    fn = {"accuracy": accuracy, "f1": binary_f1}[metric]
    return fn(rows["label"].to_numpy(), rows["pred"].to_numpy()), len(rows)


def recomputed_metrics(predictions: pd.DataFrame) -> dict[tuple, tuple[float, int]]:
    """(value, n) of every accuracy (and F1) in metrics.json, recomputed from the predictions.

    Keys mirror metrics.json paths, e.g. ``("glue", "validation", "accuracy")``,
    ``("advglue", "sst2", "by_level", "word", "accuracy")``,
    ``("advglue", "sst2", "original", "by_level", "word", "adversarial_accuracy")``.
    """
    out: dict[tuple, tuple[float, int]] = {}
    for (dataset, split), rows in predictions.groupby(["dataset", "split"], sort=False):
        if dataset == "glue":
            for metric in ("accuracy", "f1"):
                out[("glue", split, metric)] = _scores(rows, metric)
        elif dataset == "advglue":
            for metric in ("accuracy", "f1"):
                out[("advglue", split, "metrics", metric)] = _scores(rows, metric)
            for level, group in rows.groupby("level", sort=True):
                out[("advglue", split, "by_level", level, "accuracy")] = _scores(group, "accuracy")
                for method, cell in group.groupby("method", sort=True):
                    out[("advglue", split, "by_level_method", level, method, "accuracy")] = _scores(cell, "accuracy")
        elif dataset == "advglue_original":
            adversarial = predictions[(predictions["dataset"] == "advglue") & (predictions["split"] == split)
                                      & predictions["idx"].isin(rows["idx"])]
            out[("advglue", split, "original", "accuracy")] = _scores(rows, "accuracy")
            out[("advglue", split, "original", "adversarial_accuracy")] = _scores(adversarial, "accuracy")
            for level, group in rows.groupby("level", sort=True):
                adv_level = adversarial[adversarial["idx"].isin(group["idx"])]
                out[("advglue", split, "original", "by_level", level, "accuracy")] = _scores(group, "accuracy")
                out[("advglue", split, "original", "by_level", level, "adversarial_accuracy")] = _scores(
                    adv_level, "accuracy")
    return out


_RECOMPUTABLE = {"accuracy", "f1", "adversarial_accuracy"}


def _reported_metrics(metrics: dict) -> dict[tuple, dict]:
    """Every accuracy / F1 record of metrics.json keyed like ``recomputed_metrics`` (metrics this
    module cannot recompute, e.g. ones added later, are left out rather than flagged)."""
    out = {}
    for split, values in metrics.get("glue", {}).items():
        out.update({("glue", split, name): m for name, m in values.items()})
    for adv_set, block in metrics.get("advglue", {}).items():
        out.update({("advglue", adv_set, "metrics", name): m for name, m in block.get("metrics", {}).items()})
        out.update({("advglue", adv_set, "by_level", name, "accuracy"): v["accuracy"]
                    for name, v in block.get("by_level", {}).items()})
        out.update({("advglue", adv_set, "by_level_method", level, method, "accuracy"): v["accuracy"]
                    for level, methods in block.get("by_level_method", {}).items() for method, v in methods.items()})
        original = block.get("original", {})
        out.update({("advglue", adv_set, "original", name): original[name]
                    for name in ("accuracy", "adversarial_accuracy") if name in original})
        for level, values in original.get("by_level", {}).items():
            out.update({("advglue", adv_set, "original", "by_level", level, name): m for name, m in values.items()})
    return {key: record for key, record in out.items() if key[-1] in _RECOMPUTABLE}


def metrics_mismatches(metrics: dict, predictions: pd.DataFrame, tolerance: float = 1e-9) -> list[str]:
    """Where metrics.json disagrees with its predictions (value or ``n``); empty when consistent.
    A metric recorded in metrics.json that the predictions cannot produce is a mismatch too."""
    recomputed = recomputed_metrics(predictions)
    problems = []
    for key, record in _reported_metrics(metrics).items():
        name = "/".join(map(str, key))
        if key not in recomputed:
            problems.append(f"{name}: no matching predictions")
            continue
        value, n = recomputed[key]
        if abs(record["value"] - value) > tolerance or int(record["n"]) != n:
            problems.append(f"{name}: metrics.json has {record['value']} (n={record['n']}), "
                            f"predictions give {value} (n={n})")
    return problems


def check_metrics_match(metrics_path: str | Path, predictions_path: str | Path) -> None:
    """Raise when a metrics.json cannot be recomputed from its predictions.parquet."""
    metrics = json.loads(Path(metrics_path).read_text(encoding="utf-8"))
    problems = metrics_mismatches(metrics, pd.read_parquet(predictions_path))
    if problems:
        raise ValueError(f"{metrics_path} does not match {predictions_path}: " + "; ".join(problems[:5])
                         + (f"; ... ({len(problems)} in all)" if len(problems) > 5 else ""))


def check_runs_match(metrics_paths: Iterable[str | Path], prediction_paths: Iterable[str | Path]) -> int:
    """``check_metrics_match`` for every run (model, task, seed) that has both files; a run with
    only one of them is an error. Returns the number of runs checked."""
    metrics_by_run = {run_from_path(p): p for p in metrics_paths}
    predictions_by_run = {run_from_path(p): p for p in prediction_paths}
    unpaired = sorted(set(metrics_by_run) ^ set(predictions_by_run))
    if unpaired:
        model, task, seed = unpaired[0]
        raise ValueError(f"{len(unpaired)} run(s) have metrics.json or predictions.parquet but not both, "
                         f"e.g. model {model}, task {task}, seed {seed}")
    for run, metrics_path in metrics_by_run.items():
        check_metrics_match(metrics_path, predictions_by_run[run])
    return len(metrics_by_run)
