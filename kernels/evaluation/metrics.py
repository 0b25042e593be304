"""Classification metrics with seeded 95% percentile-bootstrap confidence intervals.

- ``accuracy``: share of predictions equal to the label.
- ``binary_f1``: F1 of the positive class 1 (as GLUE/AdvGLUE score QQP, i.e. sklearn's
  ``f1_score`` default); 0.0 when there is no true positive (precision + recall = 0).
- ``with_ci``: the metric on the full sample plus the 2.5th and 97.5th percentiles of the metric
  over ``samples`` bootstrap resamples (rows drawn with replacement, same size), returned as
  ``{"value", "ci_low", "ci_high", "n"}``. ``samples = 0`` gives ``ci_low = ci_high = None``.
- ``ItemStatistic``: any quantity as a statistic of per-item columns (accuracy, F1, attack success
  rate = successes / items attacked, paired and unpaired differences), so that the value, its item
  bootstrap (``statistic_record``) and its two-level bootstrap over runs (``two_level_bootstrap``:
  draw seeds with replacement, then items within each) come from one definition.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
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


# --- item statistics: one definition for a value, its item bootstrap and its two-level bootstrap -------------

@dataclass(frozen=True)
class ItemStatistic:
    """A quantity computed from per-item columns, so that it can be resampled by item (and by seed).

    ``samples``: independent item sets (e.g. GLUE validation and AdvGLUE for the unpaired drop), each an
    ``(n_i, c_i)`` array of per-item columns; ``statistic`` maps the column means of every sample (a list of
    ``(B, c_i)`` arrays, one row per resample) to the ``B`` values. ``n`` is the item count reported with the
    value; ``extra`` holds further fields of its record (e.g. ``skipped`` of the attack success rate).
    """

    samples: tuple[np.ndarray, ...]
    statistic: Callable[[list[np.ndarray]], np.ndarray]
    n: int
    extra: dict = field(default_factory=dict)

    def value(self) -> float:
        return float(self.statistic([s.mean(axis=0)[None, :] for s in self.samples])[0])


def mean_of_first_column(means: list[np.ndarray]) -> np.ndarray:
    return means[0][:, 0]


def ratio_of_columns(means: list[np.ndarray]) -> np.ndarray:
    """Column 1 over column 0 (e.g. attacks that succeeded over items attacked); NaN where column 0 is 0."""
    denominator = means[0][:, 0]
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, means[0][:, 1] / safe, np.nan)


def difference_of_samples(means: list[np.ndarray]) -> np.ndarray:
    return means[0][:, 0] - means[1][:, 0]


def f1_from_counts(means: list[np.ndarray]) -> np.ndarray:
    tp, fp, fn = means[0][:, 0], means[0][:, 1], means[0][:, 2]
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)


def accuracy_statistic(labels, preds) -> ItemStatistic:
    labels, preds = _pair(labels, preds)
    return ItemStatistic(((labels == preds).astype(float)[:, None],), mean_of_first_column, int(labels.size))


def f1_statistic(labels, preds) -> ItemStatistic:
    labels, preds = _pair(labels, preds)
    columns = np.stack([(preds == 1) & (labels == 1), (preds == 1) & (labels != 1), (preds != 1) & (labels == 1)],
                       axis=1).astype(float)
    return ItemStatistic((columns,), f1_from_counts, int(labels.size))


METRIC_STATISTICS: dict[str, Callable[..., ItemStatistic]] = {"accuracy": accuracy_statistic, "f1": f1_statistic}


def _resampled_means(sample: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    # The same draws as bootstrap_distribution: one row of n item indices per resample.
    idx = rng.integers(0, sample.shape[0], size=(count, sample.shape[0]))
    return sample[idx].mean(axis=1)


def item_bootstrap(stat: ItemStatistic, samples: int, seed: int) -> np.ndarray:
    """``stat`` on ``samples`` resamples of its items; sample ``i`` draws from ``default_rng(seed + i)``, so a
    one-sample statistic resamples exactly as :func:`bootstrap_distribution` with the same seed."""
    rngs = [np.random.default_rng(seed + i) for i in range(len(stat.samples))]
    values = np.empty(samples, dtype=np.float64)
    for start in range(0, samples, _CHUNK):
        count = min(_CHUNK, samples - start)
        values[start:start + count] = stat.statistic(
            [_resampled_means(sample, count, rng) for sample, rng in zip(stat.samples, rngs)])
    return values


def nan_percentile_interval(values: np.ndarray) -> tuple[float | None, float | None]:
    """Percentile interval over the finite values (a resample can leave a ratio undefined); None if none are."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    return percentile_interval(values)


def statistic_record(stat: ItemStatistic, samples: int, seed: int) -> dict:
    """``{"value", "ci_low", "ci_high", "n", **extra}``: the value on all items and its item-bootstrap CI."""
    if stat.n == 0:
        return {"value": None, "ci_low": None, "ci_high": None, "n": 0, **stat.extra}
    low = high = None
    if samples > 0:
        low, high = nan_percentile_interval(item_bootstrap(stat, samples, seed))
    return {"value": stat.value(), "ci_low": low, "ci_high": high, "n": int(stat.n), **stat.extra}


# Seeds of the inner (item) resamples of one run: replicate 0 uses the run's own bootstrap seed, so with one
# seed the two-level interval is exactly the run's item-bootstrap interval in metrics.json.
_REPLICATE_STRIDE = 7919


def two_level_bootstrap(stats: list[ItemStatistic], seeds: list[int], samples: int,
                        choice_seed: int = 0) -> tuple[float, float | None, float | None]:
    """(mean over runs, CI low, CI high) of a quantity measured in several runs (fine-tuning seeds).

    Two-level percentile bootstrap: each resample draws ``k`` runs with replacement, resamples the items of
    each drawn run, and averages the ``k`` values; so the interval covers both the seed-to-seed and the
    item-sampling variation, and with one run it is that run's item bootstrap. ``seeds[j]`` is the
    bootstrap seed of run ``j`` (as in its metrics.json). Runs whose statistic has no item are left out.
    """
    kept = [(stat, seed) for stat, seed in zip(stats, seeds) if stat.n > 0]
    if not kept:
        return float("nan"), None, None
    mean = float(np.mean([stat.value() for stat, _ in kept]))
    if samples <= 0:
        return mean, None, None
    k = len(kept)
    inner = np.stack([np.stack([item_bootstrap(stat, samples, seed + m * _REPLICATE_STRIDE) for m in range(k)],
                               axis=1) for stat, seed in kept])  # [run, resample, replicate]
    if k == 1:
        draws = inner[0, :, 0]
    else:
        chosen = np.random.default_rng(choice_seed).integers(0, k, size=(samples, k))
        picked = inner[chosen, np.arange(samples)[:, None], np.arange(k)[None, :]]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: an undefined ratio in every draw
            draws = np.nanmean(picked, axis=1)
    low, high = nan_percentile_interval(draws)
    return mean, low, high
