"""The AdvGLUE official score, computed as the authors' ``evaluate.py`` (AI-secure/adversarial-glue).

The official script, per set of ``sst2 qqp mnli mnli-mm qnli rte``: the GLUE metrics of the set's
task (QQP: accuracy and F1 of class 1; the others: accuracy) on the predictions against dev.json's
labels; the set's score is the mean of those metrics. ``mnli`` then becomes the mean of ``mnli``
and ``mnli-mm`` (and ``mnli-mm`` is dropped); the score is the mean over the remaining tasks.

This module does exactly that for the sets present in the predictions file. When all six sets
are there, ``complete`` is true and ``score`` equals the official score. With fewer (the demo only
fine-tunes some tasks), ``score`` is the mean over the evaluated tasks, ``complete`` is false and
``missing_tasks`` lists the rest; like the official script, ``mnli`` alone (without ``mnli-mm``)
counts as the MNLI task score.

Score file: ``{"model", "seed", "score", "per_task": {task: float}, "per_set": {set: {metric:
float}}, "complete": bool, "missing_tasks": [task, ...], "missing_sets": [set, ...]}``.
Predictions file: ``{set: [pred, ...]}`` in dev.json order, sets in dev.json order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kernels.data.tasks import ADVGLUE_SETS, advglue_task
from kernels.evaluation.metrics import accuracy, binary_f1

OFFICIAL_TASKS = ("sst2", "qqp", "mnli", "qnli", "rte")
_METRIC_FUNCS = {"accuracy": accuracy, "f1": binary_f1}


def set_metrics(adv_set: str, labels, preds) -> dict[str, float]:
    """The GLUE metrics the official script computes for one AdvGLUE set."""
    labels, preds = list(labels), list(preds)
    if len(labels) != len(preds):
        raise ValueError(f"advglue {adv_set}: {len(preds)} predictions for {len(labels)} dev items")
    return {name: _METRIC_FUNCS[name](labels, preds) for name in advglue_task(adv_set).metrics}


def official_score(labels: dict[str, list[int]], predictions: dict[str, list[int]]) -> dict:
    """Score the sets in ``predictions`` against ``labels`` ({set: [label, ...]}, dev.json order)."""
    unknown = sorted(set(predictions) - set(ADVGLUE_SETS))
    if unknown:
        raise ValueError(f"predictions: unknown AdvGLUE set(s) {unknown}; known: {list(ADVGLUE_SETS)}")
    per_set, set_scores = {}, {}
    for adv_set in ADVGLUE_SETS:  # official order
        if adv_set not in predictions:
            continue
        if adv_set not in labels:
            raise ValueError(f"dev data has no set {adv_set!r}")
        per_set[adv_set] = set_metrics(adv_set, labels[adv_set], predictions[adv_set])
        set_scores[adv_set] = float(np.mean(list(per_set[adv_set].values())))
    if not set_scores:
        raise ValueError("no AdvGLUE predictions to score")
    if "mnli" in set_scores and "mnli-mm" in set_scores:
        set_scores["mnli"] = (set_scores["mnli"] + set_scores.pop("mnli-mm")) / 2
    elif "mnli-mm" in set_scores:
        # Not reachable through the workflow (both sets come from the mnli model); kept explicit
        # so a lone mnli-mm is not silently reported as a separate sixth task.
        set_scores["mnli"] = set_scores.pop("mnli-mm")
    missing_sets = [s for s in ADVGLUE_SETS if s not in predictions]
    return {"score": float(np.mean(list(set_scores.values()))),
            "per_task": set_scores,
            "per_set": per_set,
            "complete": not missing_sets,
            # a task is missing when any of its sets is (MNLI needs both mnli and mnli-mm)
            "missing_tasks": [t for t in OFFICIAL_TASKS
                              if any(s in missing_sets for s in advglue_task(t).advglue_sets)],
            "missing_sets": missing_sets}


def predictions_from_frames(frames: list[pd.DataFrame], sources: list[str] | None = None
                            ) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """``({set: [pred, ...]}, {set: [idx, ...]})`` ordered by idx (= dev.json order) from
    predictions.parquet frames."""
    sources = sources or [f"predictions[{i}]" for i in range(len(frames))]
    out: dict[str, list[int]] = {}
    indices: dict[str, list[int]] = {}
    for frame, source in zip(frames, sources):
        for col in ("dataset", "split", "idx", "pred"):
            if col not in frame.columns:
                raise ValueError(f"{source}: missing column {col!r}")
        adv = frame[frame["dataset"] == "advglue"]
        for adv_set, rows in adv.groupby("split", sort=False):
            if adv_set in out:
                raise ValueError(f"{source}: AdvGLUE set {adv_set!r} appears in more than one predictions file")
            rows = rows.sort_values("idx", kind="stable")
            if rows["idx"].duplicated().any():
                raise ValueError(f"{source}: duplicate idx in AdvGLUE set {adv_set!r}")
            out[adv_set] = [int(p) for p in rows["pred"]]
            indices[adv_set] = [int(i) for i in rows["idx"]]
    return out, indices


def dev_labels(frames: dict[str, pd.DataFrame]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Labels and idx of each AdvGLUE dev set ({set: [...]}), ordered by idx (= dev.json order)."""
    labels, indices = {}, {}
    for adv_set, frame in frames.items():
        ordered = frame.sort_values("idx", kind="stable")
        labels[adv_set] = [int(v) for v in ordered["label"]]
        indices[adv_set] = [int(v) for v in ordered["idx"]]
    return labels, indices


def score_prediction_files(prediction_paths: list[str | Path], dev_paths: list[str | Path]) -> tuple[dict, dict]:
    """(predictions json, score json) from predictions.parquet files and AdvGLUE dev parquet files."""
    frames = [pd.read_parquet(p) for p in prediction_paths]
    collected, collected_idx = predictions_from_frames(frames, [str(p) for p in prediction_paths])
    dev = {Path(p).stem: pd.read_parquet(p) for p in dev_paths}
    labels, dev_idx = dev_labels(dev)
    preds = {}
    for adv_set in ADVGLUE_SETS:
        if adv_set not in collected:
            continue
        if adv_set not in dev:
            raise ValueError(f"AdvGLUE set {adv_set!r} is predicted but no dev file {adv_set}.parquet was given")
        if collected_idx[adv_set] != dev_idx[adv_set]:
            raise ValueError(f"AdvGLUE set {adv_set!r}: the predicted idx do not match the dev set's idx")
        preds[adv_set] = collected[adv_set]
    return preds, official_score(labels, preds)
