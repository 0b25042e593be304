"""Evaluate one fine-tuned model on its task's GLUE validation split(s) and AdvGLUE set(s).

predictions.parquet (one row per example)
-----------------------------------------
``dataset`` (``glue`` / ``advglue`` / ``advglue_original``), ``split`` (GLUE split name such as
``validation`` / ``validation_matched``, or the AdvGLUE set name such as ``sst2``, ``mnli-mm``),
``idx``, ``label``, ``pred``, ``prob`` (softmax probability of ``pred``), ``level`` and ``method``
(AdvGLUE annotation; null for ``glue`` rows). ``advglue_original`` rows are the clean GLUE
originals of the word- and sentence-level AdvGLUE items (the perturbed field replaced by its
``original_text_a``/``original_text_b``); human-crafted items have no original. Rows keep the
order of their input files, so AdvGLUE rows are in dev.json order.

metrics.json
------------
Every metric is a record ``M = {"value": float, "ci_low": float|null, "ci_high": float|null,
"n": int}``: the value on all ``n`` examples and a 95% percentile-bootstrap interval over the items
(null when ``bootstrap.samples`` is 0). Layout::

    {
      "model": str|null, "task": str, "seed": int|null,
      "bootstrap": {"samples": int, "confidence": 0.95, "seed": int, "method": "percentile"},
      "glue": {<split>: {"accuracy": M, "f1": M (qqp only)}},
      "advglue": {
        <set>: {
          "glue_split": str,                      # GLUE split of the unpaired drop
          "metrics": {"accuracy": M, "f1": M (qqp only)},
          "by_level": {<level>: {"accuracy": M}}, # word / sentence / human
          "by_level_method": {<level>: {<method>: {"accuracy": M}}},  # a method within its level
          "original": {                          # items with a clean original (word+sentence)
            "accuracy": M,                       # on the clean originals
            "adversarial_accuracy": M,           # on their perturbed versions
            "by_level": {<level>: {"accuracy": M, "adversarial_accuracy": M}}
          },
          "attack_success_rate": {"all": M + {"skipped": int}, "by_level": {<level>: M + {"skipped": int}}},
          "robustness_drop": {"all": M, "by_level": {<level>: M}},           # paired (headline)
          "robustness_drop_unpaired": {"all": M, "by_level": {<level>: M}}  # GLUE validation vs AdvGLUE
        }
      }
    }

- attack success rate (TextAttack's definition): among the items that have a clean original AND
  whose original the model classifies correctly, the share whose adversarial version it gets wrong;
  ``n`` = those items, ``skipped`` = items whose original it already got wrong (no attack to make).
  ``value`` is null when ``n`` is 0.
- robustness drop (paired, the headline): accuracy on the clean originals minus accuracy on their
  adversarial versions, the same items (word- and sentence-level); ``n`` = those items; its CI
  resamples the items once for both.
- robustness drop unpaired: GLUE accuracy on ``glue_split`` minus AdvGLUE accuracy (of the whole
  set, or of one level, human-crafted included); different item sets, so its CI resamples both
  independently; ``n`` is the AdvGLUE count.
- by level and method: CheckList and StressTest occur at both sentence and human level, so a method
  is only ever reported within one level.
- ``glue_split``: ``mnli`` pairs with ``validation_matched``, ``mnli-mm`` with
  ``validation_mismatched``, every other set with ``validation``.

Every number comes from :func:`run_quantities` (one :class:`~kernels.evaluation.metrics.ItemStatistic`
each), which the tables also use for the two-level bootstrap over seeds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kernels.data.tasks import advglue_task, get_task
from kernels.evaluation.metrics import (CONFIDENCE, METRIC_STATISTICS, ItemStatistic, accuracy_statistic,
                                       difference_of_samples, mean_of_first_column, ratio_of_columns,
                                       statistic_record)

PREDICTION_COLUMNS = ["dataset", "split", "idx", "label", "pred", "prob", "level", "method"]


def original_frame(adv: pd.DataFrame, source: str = "advglue") -> pd.DataFrame:
    """The clean originals of the AdvGLUE items that have one (perturbed field put back)."""
    for col in ("original_text_a", "original_text_b"):
        if col not in adv.columns:
            raise ValueError(f"{source}: missing column {col!r} (AdvGLUE schema in DESIGN.md)")
    has_a, has_b = adv["original_text_a"].notna(), adv["original_text_b"].notna()
    both = has_a & has_b
    if both.any():
        raise ValueError(f"{source}: row {int(np.flatnonzero(both.to_numpy())[0])} has both "
                         "original_text_a and original_text_b; AdvGLUE perturbs one field")
    clean = adv.loc[has_a | has_b].copy()
    clean["text_a"] = clean["original_text_a"].where(clean["original_text_a"].notna(), clean["text_a"])
    if "text_b" in clean.columns:
        clean["text_b"] = clean["original_text_b"].where(clean["original_text_b"].notna(), clean["text_b"])
    return clean


def predict_all(model, tokenizer, glue: dict[str, pd.DataFrame], advglue: dict[str, pd.DataFrame], *,
                max_length: int, batch_size: int = 64, device: str = "cpu",
                dtype: str = "float32") -> pd.DataFrame:
    """Predictions for every GLUE split, AdvGLUE set and clean original (see module docstring)."""
    # Here, not at the top: the table job computes metrics from predictions with this module and no torch.
    from kernels.evaluation.predict import predict_frame

    parts = []
    for split, frame in glue.items():
        out = predict_frame(model, tokenizer, frame, max_length=max_length, batch_size=batch_size,
                            device=device, dtype=dtype, source=f"glue {split}")
        parts.append(out.assign(dataset="glue", split=split, level=None, method=None))
    for adv_set, frame in advglue.items():
        for col in ("level", "method"):
            if col not in frame.columns:
                raise ValueError(f"advglue {adv_set}: missing column {col!r}")
        out = predict_frame(model, tokenizer, frame, max_length=max_length, batch_size=batch_size,
                            device=device, dtype=dtype, source=f"advglue {adv_set}")
        parts.append(out.assign(dataset="advglue", split=adv_set, level=frame["level"].to_numpy(),
                                method=frame["method"].to_numpy()))
        clean = original_frame(frame, source=f"advglue {adv_set}")
        if len(clean):
            out = predict_frame(model, tokenizer, clean, max_length=max_length, batch_size=batch_size,
                                device=device, dtype=dtype, source=f"advglue {adv_set} originals")
            parts.append(out.assign(dataset="advglue_original", split=adv_set,
                                    level=clean["level"].to_numpy(), method=clean["method"].to_numpy()))
    frame = pd.concat(parts, ignore_index=True)[PREDICTION_COLUMNS]
    return frame.astype({"dataset": "string", "split": "string", "level": "string", "method": "string",
                         "idx": "int64", "label": "int64", "pred": "int64", "prob": "float64"})


def _seed_for(base: int, *key: str) -> int:
    # A stable, distinct bootstrap stream per metric, so adding a metric never shifts the others.
    return (int(base) * 1_000_003 + zlib.crc32("/".join(key).encode())) % (2**32)


def glue_split_for(adv_set: str) -> str:
    spec = advglue_task(adv_set)
    position = spec.advglue_sets.index(adv_set)
    return spec.eval_splits[position] if position < len(spec.eval_splits) else spec.eval_splits[0]


# A metrics.csv row: (dataset, split, level, method, metric); ``all`` for totals.
RowKey = tuple[str, str, str, str, str]
ALL = "all"


@dataclass(frozen=True)
class Quantity:
    """One reported number of a run: its item statistic and the name of its bootstrap stream."""

    stat: ItemStatistic
    stream: tuple[str, ...]


def _labels_preds(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return rows["label"].to_numpy(), rows["pred"].to_numpy()


def _metric(name: str, rows: pd.DataFrame, *stream: str) -> Quantity:
    return Quantity(METRIC_STATISTICS[name](*_labels_preds(rows)), (*stream, name))


def attack_success_statistic(paired: pd.DataFrame) -> ItemStatistic:
    """TextAttack's attack success rate: among the items whose clean original the model gets right, the share
    whose adversarial version it gets wrong. ``n`` = those items; ``skipped`` = items whose original it already
    got wrong (no attack to succeed)."""
    original_right = (paired["pred_orig"] == paired["label"]).to_numpy()
    success = original_right & (paired["pred"] != paired["label"]).to_numpy()
    columns = np.stack([original_right, success], axis=1).astype(float)
    attacked = int(original_right.sum())
    return ItemStatistic((columns,), ratio_of_columns, attacked, {"skipped": int(len(paired) - attacked)})


def paired_drop_statistic(paired: pd.DataFrame) -> ItemStatistic:
    """Accuracy on the clean originals minus accuracy on their adversarial versions, same items."""
    change = ((paired["pred_orig"] == paired["label"]).astype(float)
              - (paired["pred"] == paired["label"]).astype(float)).to_numpy()
    return ItemStatistic((change[:, None],), mean_of_first_column, int(len(paired)))


def unpaired_drop_statistic(glue_rows: pd.DataFrame, adv_rows: pd.DataFrame) -> ItemStatistic:
    """GLUE validation accuracy minus AdvGLUE accuracy: different item sets, resampled independently."""
    glue = (glue_rows["label"] == glue_rows["pred"]).to_numpy(dtype=float)[:, None]
    adv = (adv_rows["label"] == adv_rows["pred"]).to_numpy(dtype=float)[:, None]
    return ItemStatistic((glue, adv), difference_of_samples, int(len(adv_rows)))


def run_quantities(predictions: pd.DataFrame, task: str) -> dict[RowKey, Quantity]:
    """Every number of one run (model, task, seed), keyed by its metrics.csv row (see module docstring).

    metrics.json (per run, item bootstrap) and metrics.csv's over-seeds intervals (two-level bootstrap) are
    both computed from these, so the two can never define a number differently."""
    spec = get_task(task)
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions: missing column(s) {missing}")
    out: dict[RowKey, Quantity] = {}
    glue = predictions[predictions["dataset"] == "glue"]
    for split, rows in glue.groupby("split", sort=False):
        for name in spec.metrics:
            out[("glue", split, ALL, ALL, name)] = _metric(name, rows, "glue", split)
    originals = predictions[predictions["dataset"] == "advglue_original"]
    for adv_set, rows in predictions[predictions["dataset"] == "advglue"].groupby("split", sort=False):
        glue_rows = glue[glue["split"] == glue_split_for(adv_set)]
        out.update(_advglue_quantities(adv_set, rows, originals[originals["split"] == adv_set], glue_rows))
    return out


def _advglue_quantities(adv_set, rows, originals, glue_rows) -> dict[RowKey, Quantity]:
    out: dict[RowKey, Quantity] = {}
    for name in advglue_task(adv_set).metrics:
        out[("advglue", adv_set, ALL, ALL, name)] = _metric(name, rows, "advglue", adv_set)
    for level, group in rows.groupby("level", sort=True):
        out[("advglue", adv_set, level, ALL, "accuracy")] = _metric("accuracy", group, "advglue", adv_set,
                                                                    "level", level)
        # CheckList and StressTest occur at more than one level: a method is only reported within its level.
        for method, cell in group.groupby("method", sort=True):
            out[("advglue", adv_set, level, method, "accuracy")] = _metric("accuracy", cell, "advglue", adv_set,
                                                                           "level", level, "method", method)
    paired = _pair_with_originals(rows, originals, adv_set)
    groups = [(ALL, paired)] + list(paired.groupby("level", sort=True)) if len(paired) else []
    for level, group in groups:
        key = () if level == ALL else (level,)
        out[("advglue_original", adv_set, level, ALL, "accuracy")] = Quantity(
            accuracy_statistic(group["label"].to_numpy(), group["pred_orig"].to_numpy()),
            ("original", adv_set, *key, "accuracy"))
        out[("advglue", adv_set, level, ALL, "paired_adversarial_accuracy")] = _metric(
            "accuracy", group, "original-adv", adv_set, *key)
        out[("advglue", adv_set, level, ALL, "attack_success_rate")] = Quantity(
            attack_success_statistic(group), ("asr", adv_set, *key))
        out[("advglue", adv_set, level, ALL, "robustness_drop")] = Quantity(
            paired_drop_statistic(group), ("paired-drop", adv_set, *key))
    if len(glue_rows):
        for level, group in [(ALL, rows)] + list(rows.groupby("level", sort=True)):
            key = () if level == ALL else (level,)
            out[("advglue", adv_set, level, ALL, "robustness_drop_unpaired")] = Quantity(
                unpaired_drop_statistic(glue_rows, group), ("drop", adv_set, *key))
    return out


def quantity_seed(bootstrap_seed: int, quantity: Quantity) -> int:
    """The bootstrap seed of one quantity of a run (a stable, distinct stream per quantity)."""
    return _seed_for(bootstrap_seed, *quantity.stream)


def compute_metrics(predictions: pd.DataFrame, task: str, *, bootstrap_samples: int = 1000,
                    bootstrap_seed: int = 0, model: str | None = None, seed: int | None = None) -> dict:
    """metrics.json content (schema in the module docstring) from a predictions frame."""
    B, s0 = int(bootstrap_samples), int(bootstrap_seed)
    records = {key: statistic_record(q.stat, B, quantity_seed(s0, q))
               for key, q in run_quantities(predictions, task).items()}
    result = {"model": model, "task": task, "seed": seed,
              "bootstrap": {"samples": B, "confidence": CONFIDENCE, "seed": s0, "method": "percentile"},
              "glue": {}, "advglue": {}}
    for (dataset, split, level, method, metric), record in records.items():
        if dataset == "glue":
            result["glue"].setdefault(split, {})[metric] = record
            continue
        block = result["advglue"].setdefault(split, {"glue_split": glue_split_for(split), "metrics": {},
                                                     "by_level": {}, "by_level_method": {}})
        _place(block, dataset, level, method, metric, record)
    return result


def _place(block: dict, dataset: str, level: str, method: str, metric: str, record: dict) -> None:
    """Put one AdvGLUE record where the metrics.json schema has it."""
    if dataset == "advglue_original" or metric == "paired_adversarial_accuracy":
        name = "accuracy" if dataset == "advglue_original" else "adversarial_accuracy"
        original = block.setdefault("original", {"by_level": {}})
        if level == ALL:
            original[name] = record
        else:
            original["by_level"].setdefault(level, {})[name] = record
    elif metric in ("attack_success_rate", "robustness_drop", "robustness_drop_unpaired"):
        entry = block.setdefault(metric, {"all": None, "by_level": {}})
        if level == ALL:
            entry["all"] = record
        else:
            entry["by_level"][level] = record
    elif level == ALL:
        block["metrics"][metric] = record
    elif method == ALL:
        block["by_level"].setdefault(level, {})[metric] = record
    else:
        block["by_level_method"].setdefault(level, {}).setdefault(method, {})[metric] = record


def _pair_with_originals(rows: pd.DataFrame, originals: pd.DataFrame, adv_set: str) -> pd.DataFrame:
    """AdvGLUE rows that have an original, with the original's prediction as ``pred_orig``."""
    if originals.empty:
        return rows.iloc[0:0].assign(pred_orig=pd.Series(dtype="int64"))
    merged = rows.merge(originals[["idx", "label", "pred"]].rename(columns={"pred": "pred_orig",
                                                                          "label": "label_orig"}),
                        on="idx", how="inner", validate="one_to_one")
    if len(merged) != len(originals):
        raise ValueError(f"advglue {adv_set}: {len(originals) - len(merged)} original rows have no "
                         "adversarial row with the same idx")
    if (merged["label"] != merged["label_orig"]).any():
        raise ValueError(f"advglue {adv_set}: original and adversarial labels differ")
    return merged


def read_frames(paths: list[str | Path], names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Parquet files keyed by name (default: file stem, e.g. ``validation_matched``, ``mnli-mm``)."""
    names = names or [Path(p).stem for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate split names among {list(map(str, paths))}")
    return {name: pd.read_parquet(path) for name, path in zip(names, paths)}
