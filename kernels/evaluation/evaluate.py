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
"n": int}``: the value on all ``n`` examples and a 95% percentile-bootstrap interval (null when
``bootstrap.samples`` is 0). Layout::

    {
      "model": str|null, "task": str, "seed": int|null,
      "bootstrap": {"samples": int, "confidence": 0.95, "seed": int, "method": "percentile"},
      "glue": {<split>: {"accuracy": M, "f1": M (qqp only)}},
      "advglue": {
        <set>: {
          "glue_split": str,                      # GLUE split used for the robustness drop
          "metrics": {"accuracy": M, "f1": M (qqp only)},
          "by_level": {<level>: {"accuracy": M}}, # word / sentence / human
          "by_method": {<method>: {"accuracy": M}},  # attack or source, all levels together
          "original": {                          # items with a clean original (word+sentence)
            "accuracy": M,                       # on the clean originals
            "adversarial_accuracy": M,           # on their perturbed versions
            "by_level": {<level>: {"accuracy": M, "adversarial_accuracy": M}}
          },
          "attack_success_rate": {"all": M, "by_level": {<level>: M}},
          "robustness_drop": {"all": M, "by_level": {<level>: M}}
        }
      }
    }

- attack success rate: among items that have an original, the share whose original is
  predicted correctly and whose adversarial version is not (``n`` = items with an original).
- robustness drop: GLUE accuracy on ``glue_split`` minus AdvGLUE accuracy (of the whole set, or
  of one level); its CI resamples both independently; ``n`` is the AdvGLUE count.
- ``glue_split``: ``mnli`` pairs with ``validation_matched``, ``mnli-mm`` with
  ``validation_mismatched``, every other set with ``validation``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from kernels.data.tasks import advglue_task, get_task
from kernels.evaluation.metrics import CONFIDENCE, difference_with_ci, share_with_ci, with_ci
from kernels.evaluation.predict import predict_frame

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
                max_length: int, batch_size: int = 64, device: str = "cpu") -> pd.DataFrame:
    """Predictions for every GLUE split, AdvGLUE set and clean original (see module docstring)."""
    parts = []
    for split, frame in glue.items():
        out = predict_frame(model, tokenizer, frame, max_length=max_length, batch_size=batch_size,
                            device=device, source=f"glue {split}")
        parts.append(out.assign(dataset="glue", split=split, level=None, method=None))
    for adv_set, frame in advglue.items():
        for col in ("level", "method"):
            if col not in frame.columns:
                raise ValueError(f"advglue {adv_set}: missing column {col!r}")
        out = predict_frame(model, tokenizer, frame, max_length=max_length, batch_size=batch_size,
                            device=device, source=f"advglue {adv_set}")
        parts.append(out.assign(dataset="advglue", split=adv_set, level=frame["level"].to_numpy(),
                                method=frame["method"].to_numpy()))
        clean = original_frame(frame, source=f"advglue {adv_set}")
        if len(clean):
            out = predict_frame(model, tokenizer, clean, max_length=max_length, batch_size=batch_size,
                                device=device, source=f"advglue {adv_set} originals")
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


def compute_metrics(predictions: pd.DataFrame, task: str, *, bootstrap_samples: int = 1000,
                    bootstrap_seed: int = 0, model: str | None = None, seed: int | None = None) -> dict:
    """metrics.json content (schema in the module docstring) from a predictions frame."""
    spec = get_task(task)
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions: missing column(s) {missing}")
    B, s0 = int(bootstrap_samples), int(bootstrap_seed)

    def metric(name, rows, *key):
        return with_ci(name, rows["label"].to_numpy(), rows["pred"].to_numpy(), B, _seed_for(s0, *key, name))

    result = {"model": model, "task": task, "seed": seed,
              "bootstrap": {"samples": B, "confidence": CONFIDENCE, "seed": s0, "method": "percentile"},
              "glue": {}, "advglue": {}}
    glue = predictions[predictions["dataset"] == "glue"]
    for split, rows in glue.groupby("split", sort=False):
        result["glue"][split] = {m: metric(m, rows, "glue", split) for m in spec.metrics}
    adv_all = predictions[predictions["dataset"] == "advglue"]
    originals = predictions[predictions["dataset"] == "advglue_original"]
    for adv_set, rows in adv_all.groupby("split", sort=False):
        glue_split = glue_split_for(adv_set)
        glue_rows = glue[glue["split"] == glue_split]
        result["advglue"][adv_set] = _advglue_set_metrics(
            adv_set, rows, originals[originals["split"] == adv_set], glue_rows, glue_split,
            advglue_task(adv_set).metrics, metric, B, s0)
    return result


def _advglue_set_metrics(adv_set, rows, originals, glue_rows, glue_split, metric_names, metric, B, s0) -> dict:
    out = {"glue_split": glue_split,
           "metrics": {m: metric(m, rows, "advglue", adv_set) for m in metric_names},
           "by_level": {lvl: {"accuracy": metric("accuracy", r, "advglue", adv_set, "level", lvl)}
                        for lvl, r in rows.groupby("level", sort=True)},
           "by_method": {meth: {"accuracy": metric("accuracy", r, "advglue", adv_set, "method", meth)}
                         for meth, r in rows.groupby("method", sort=True)}}
    paired = _pair_with_originals(rows, originals, adv_set)
    if len(paired):
        out["original"] = {
            "accuracy": metric("accuracy", paired.assign(pred=paired["pred_orig"]), "original", adv_set),
            "adversarial_accuracy": metric("accuracy", paired, "original-adv", adv_set),
            "by_level": {lvl: {"accuracy": metric("accuracy", r.assign(pred=r["pred_orig"]), "original", adv_set, lvl),
                               "adversarial_accuracy": metric("accuracy", r, "original-adv", adv_set, lvl)}
                         for lvl, r in paired.groupby("level", sort=True)},
        }
        success = _attack_success(paired)
        out["attack_success_rate"] = {
            "all": share_with_ci(success, B, _seed_for(s0, "asr", adv_set)),
            "by_level": {lvl: share_with_ci(_attack_success(r), B, _seed_for(s0, "asr", adv_set, lvl))
                         for lvl, r in paired.groupby("level", sort=True)}}
    if len(glue_rows):
        glue_pair = (glue_rows["label"].to_numpy(), glue_rows["pred"].to_numpy())

        def drop(r, *key):
            return difference_with_ci("accuracy", glue_pair, (r["label"].to_numpy(), r["pred"].to_numpy()),
                                      B, _seed_for(s0, "drop", adv_set, *key))

        out["robustness_drop"] = {"all": drop(rows),
                                  "by_level": {lvl: drop(r, lvl) for lvl, r in rows.groupby("level", sort=True)}}
    return out


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


def _attack_success(paired: pd.DataFrame) -> np.ndarray:
    return ((paired["pred_orig"] == paired["label"]) & (paired["pred"] != paired["label"])).to_numpy()


def read_frames(paths: list[str | Path], names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Parquet files keyed by name (default: file stem, e.g. ``validation_matched``, ``mnli-mm``)."""
    names = names or [Path(p).stem for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate split names among {list(map(str, paths))}")
    return {name: pd.read_parquet(path) for name, path in zip(names, paths)}
