"""Classification metrics with seeded 95% percentile-bootstrap confidence intervals.

- ``accuracy``: share of predictions equal to the label.
- ``binary_f1``: F1 of the positive class 1 (as GLUE/AdvGLUE score QQP, i.e. sklearn's
  ``f1_score`` default); 0.0 when there is no true positive (precision + recall = 0).
- ``with_ci``: the metric on the full sample plus the 2.5th and 97.5th percentiles of the metric
  over ``samples`` bootstrap resamples (rows drawn with replacement, same size), returned as
  ``{"value", "ci_low", "ci_high", "n"}``. ``samples = 0`` gives ``ci_low = ci_high = None``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

CONFIDENCE = 0.95
_CHUNK = 200  # bootstrap resamples evaluated at once: bounds memory at _CHUNK * n indices


def accuracy(labels, preds) -> float:
    labels, preds = _pair(labels, preds)
    return float(np.mean(labels == preds))


def binary_f1(labels, preds) -> float:
    labels, preds = _pair(labels, preds)
    return float(_f1_rows(labels[None, :], preds[None, :])[0])


def _pair(labels, preds) -> tuple[np.ndarray, np.ndarray]:
    labels, preds = np.asarray(labels), np.asarray(preds)
    if labels.shape != preds.shape or labels.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D of equal length, got {labels.shape} and {preds.shape}")
    if labels.size == 0:
        raise ValueError("cannot compute a metric on zero examples")
    return labels, preds


def _accuracy_rows(labels: np.ndarray, preds: np.ndarray) -> np.ndarray:
    return np.mean(labels == preds, axis=-1)


def _f1_rows(labels: np.ndarray, preds: np.ndarray) -> np.ndarray:
    # F1 = 2TP / (2TP + FP + FN); defined as 0 when the denominator is 0 (sklearn's zero_division=0).
    tp = np.sum((preds == 1) & (labels == 1), axis=-1)
    fp = np.sum((preds == 1) & (labels != 1), axis=-1)
    fn = np.sum((preds != 1) & (labels == 1), axis=-1)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


ROW_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "accuracy": _accuracy_rows,
    "f1": _f1_rows,
}


def bootstrap_distribution(metric: str, labels, preds, samples: int, seed: int) -> np.ndarray:
    """The metric on ``samples`` seeded resamples (with replacement) of the (label, pred) pairs."""
    labels, preds = _pair(labels, preds)
    fn = ROW_METRICS[metric]
    rng = np.random.default_rng(seed)
    values = np.empty(samples, dtype=np.float64)
    for start in range(0, samples, _CHUNK):
        count = min(_CHUNK, samples - start)
        idx = rng.integers(0, labels.size, size=(count, labels.size))
        values[start:start + count] = fn(labels[idx], preds[idx])
    return values


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def with_ci(metric: str, labels, preds, samples: int, seed: int) -> dict:
    """``{"value", "ci_low", "ci_high", "n"}`` for ``metric`` in ``ROW_METRICS``."""
    if metric not in ROW_METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(ROW_METRICS)}")
    labels, preds = _pair(labels, preds)
    value = float(ROW_METRICS[metric](labels[None, :], preds[None, :])[0])
    low = high = None
    if samples > 0:
        low, high = percentile_interval(bootstrap_distribution(metric, labels, preds, samples, seed))
    return {"value": value, "ci_low": low, "ci_high": high, "n": int(labels.size)}


def share_with_ci(flags, samples: int, seed: int) -> dict:
    """Mean of a 0/1 indicator (e.g. "attack succeeded") with a bootstrap CI."""
    flags = np.asarray(flags, dtype=np.int64)
    return with_ci("accuracy", flags, np.ones_like(flags), samples, seed)


def difference_with_ci(metric: str, first: tuple, second: tuple, samples: int, seed: int) -> dict:
    """metric(first) - metric(second) for two independent samples, each a (labels, preds) pair.

    The CI resamples both samples independently (they are different example sets, e.g. GLUE
    validation and AdvGLUE). ``n`` is the size of the second sample.
    """
    value = (float(ROW_METRICS[metric](*(np.asarray(a)[None, :] for a in first))[0])
             - float(ROW_METRICS[metric](*(np.asarray(a)[None, :] for a in second))[0]))
    low = high = None
    if samples > 0:
        diffs = (bootstrap_distribution(metric, *first, samples, seed)
                 - bootstrap_distribution(metric, *second, samples, seed + 1))
        low, high = percentile_interval(diffs)
    return {"value": value, "ci_low": low, "ci_high": high, "n": int(len(second[0]))}
