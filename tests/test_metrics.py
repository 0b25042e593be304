"""Metrics, bootstrap intervals and the AdvGLUE official score against hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kernels.evaluation.advglue import official_score, score_prediction_files
from kernels.evaluation.metrics import (ItemStatistic, accuracy, accuracy_statistic, binary_f1, bootstrap_distribution,
                                       difference_with_ci, item_bootstrap, ratio_of_columns, share_with_ci,
                                       statistic_record, two_level_bootstrap, with_ci)

REPO = Path(__file__).resolve().parents[1]


def test_accuracy_and_f1_hand_computed():
    labels = [1, 1, 0, 0, 1]
    preds = [1, 0, 0, 1, 1]
    assert accuracy(labels, preds) == pytest.approx(3 / 5)
    # TP=2, FP=1, FN=1 -> precision 2/3, recall 2/3, F1 2/3
    assert binary_f1(labels, preds) == pytest.approx(2 / 3)
    # TP=1, FP=0, FN=2 -> P=1, R=1/3 -> F1 = 2*(1/3)/(4/3) = 0.5
    assert binary_f1([1, 1, 1, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert binary_f1([0, 0, 1], [0, 0, 0]) == 0.0  # no true positive: F1 defined as 0
    assert binary_f1([0, 0], [0, 0]) == 0.0


def test_metric_input_errors():
    with pytest.raises(ValueError, match="equal length"):
        accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="zero examples"):
        accuracy([], [])
    with pytest.raises(ValueError, match="unknown metric"):
        with_ci("recall", [1], [1], 10, 0)


def test_bootstrap_ci_is_seeded_and_matches_normal_approximation():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 400)
    preds = np.where(np.arange(400) < 280, labels, 1 - labels)  # exactly 70% correct
    m = with_ci("accuracy", labels, preds, samples=2000, seed=3)
    assert m["value"] == pytest.approx(0.7) and m["n"] == 400
    half_width = 1.96 * np.sqrt(0.7 * 0.3 / 400)  # 0.0449
    assert m["ci_low"] == pytest.approx(0.7 - half_width, abs=0.01)
    assert m["ci_high"] == pytest.approx(0.7 + half_width, abs=0.01)
    assert with_ci("accuracy", labels, preds, samples=2000, seed=3) == m
    # a 95 % interval, not a 90 % one (whose half width, 0.038, the tolerance above would let through): it
    # holds 95 % of its own bootstrap distribution, a 90 % interval only about 90 %
    draws = bootstrap_distribution("accuracy", labels, preds, 2000, seed=3)
    inside = float(((draws >= m["ci_low"]) & (draws <= m["ci_high"])).mean())
    assert 0.945 <= inside <= 0.975, inside
    assert m["ci_high"] - m["ci_low"] > 2 * 1.8 * np.sqrt(0.7 * 0.3 / 400)  # wider than z = 1.8 (~93 %)
    # quantiles of a discrete statistic often coincide, so compare the resampled values themselves
    same = bootstrap_distribution("accuracy", labels, preds, 300, seed=3)
    assert np.array_equal(same, bootstrap_distribution("accuracy", labels, preds, 300, seed=3))
    assert not np.array_equal(same, bootstrap_distribution("accuracy", labels, preds, 300, seed=4))


def test_bootstrap_edge_cases():
    perfect = with_ci("accuracy", [0, 1, 1], [0, 1, 1], samples=200, seed=0)
    assert (perfect["value"], perfect["ci_low"], perfect["ci_high"]) == (1.0, 1.0, 1.0)
    none = with_ci("f1", [0, 1, 1], [0, 1, 0], samples=0, seed=0)
    assert none["ci_low"] is None and none["ci_high"] is None and none["value"] == pytest.approx(2 / 3)
    f1 = with_ci("f1", [0, 1, 1, 1, 0, 1] * 20, [0, 1, 0, 1, 1, 1] * 20, samples=500, seed=1)
    assert f1["ci_low"] < f1["value"] < f1["ci_high"]


def test_share_and_difference():
    share = share_with_ci([1, 0, 0, 1], samples=100, seed=0)
    assert share["value"] == 0.5 and share["n"] == 4
    diff = difference_with_ci("accuracy", ([1, 1, 0, 0], [1, 1, 0, 1]), ([1, 0], [0, 0]), samples=300, seed=0)
    assert diff["value"] == pytest.approx(0.75 - 0.5) and diff["n"] == 2
    assert diff["ci_low"] <= diff["value"] <= diff["ci_high"]


# --- AdvGLUE official score ----------------------------------------------------------------------

HAND_LABELS = {
    "sst2": [0, 1, 1, 0],
    "qqp": [1, 1, 0, 0],
    "mnli": [0, 1, 2, 2],
    "mnli-mm": [2, 2],
    "qnli": [0, 1],
    "rte": [1, 0],
}
HAND_PREDS = {
    "sst2": [0, 1, 1, 1],   # acc 0.75
    "qqp": [1, 0, 1, 0],    # acc 0.5; TP1 FP1 FN1 -> F1 0.5; set score 0.5
    "mnli": [0, 0, 2, 1],   # acc 0.5
    "mnli-mm": [2, 2],      # acc 1.0 -> MNLI (0.5 + 1.0) / 2 = 0.75
    "qnli": [0, 1],         # acc 1.0
    "rte": [0, 1],          # acc 0.0
}


def test_official_score_all_tasks_hand_computed():
    result = official_score(HAND_LABELS, HAND_PREDS)
    assert result["per_task"] == pytest.approx({"sst2": 0.75, "qqp": 0.5, "mnli": 0.75, "qnli": 1.0, "rte": 0.0})
    assert result["score"] == pytest.approx((0.75 + 0.5 + 0.75 + 1.0 + 0.0) / 5)
    assert result["per_set"]["qqp"] == pytest.approx({"accuracy": 0.5, "f1": 0.5})
    assert result["complete"] is True and result["missing_tasks"] == [] and result["missing_sets"] == []


def test_official_score_subset_and_qqp_mean_of_accuracy_and_f1():
    partial = official_score(HAND_LABELS, {"sst2": HAND_PREDS["sst2"], "rte": HAND_PREDS["rte"]})
    assert partial["score"] == pytest.approx(0.375)
    assert partial["complete"] is False
    assert partial["missing_tasks"] == ["qqp", "mnli", "qnli"]
    # qqp: acc 3/4, TP=1 FP=0 FN=1 -> F1 2/3; set score = (0.75 + 2/3) / 2
    qqp = official_score(HAND_LABELS, {"qqp": [1, 0, 0, 0]})
    assert qqp["score"] == pytest.approx((0.75 + 2 / 3) / 2)
    # mnli without mnli-mm: counts alone (as the official script does) but the task is incomplete
    mnli = official_score(HAND_LABELS, {"mnli": HAND_PREDS["mnli"]})
    assert mnli["per_task"] == {"mnli": pytest.approx(0.5)} and mnli["missing_tasks"] == ["sst2", "qqp", "mnli", "qnli", "rte"]


def test_official_score_errors():
    with pytest.raises(ValueError, match="unknown AdvGLUE set"):
        official_score(HAND_LABELS, {"cola": [0]})
    with pytest.raises(ValueError, match="advglue sst2: 3 predictions for 4 dev items"):
        official_score(HAND_LABELS, {"sst2": [0, 1, 1]})


def test_official_score_on_real_dev_labels_with_constant_predictions():
    dev = json.loads((REPO / "resources/data/advglue/dev.json").read_text(encoding="utf-8"))
    labels = {name: [item["label"] for item in items] for name, items in dev.items()}
    zeros = {name: [0] * len(items) for name, items in labels.items()}
    result = official_score(labels, zeros)
    # Label-0 counts from the data README: sst2 72/148, qqp 46/78 (F1 0: no positive predicted),
    # mnli 32/121, mnli-mm 60/162, qnli 74/148, rte 35/81.
    expected = {"sst2": 72 / 148, "qqp": (46 / 78 + 0.0) / 2, "mnli": (32 / 121 + 60 / 162) / 2,
                "qnli": 74 / 148, "rte": 35 / 81}
    assert result["per_task"] == pytest.approx(expected)
    assert result["score"] == pytest.approx(sum(expected.values()) / 5)
    assert official_score(labels, labels)["score"] == pytest.approx(1.0)


def _prediction_rows(adv_set: str, preds: list[int], order: list[int]) -> pd.DataFrame:
    rows = [{"dataset": "advglue", "split": adv_set, "idx": i, "label": HAND_LABELS[adv_set][i], "pred": preds[i],
             "prob": 0.9, "level": "word", "method": "TextFooler"} for i in order]
    glue = [{"dataset": "glue", "split": "validation", "idx": 0, "label": 0, "pred": 1, "prob": 0.6,
             "level": None, "method": None}]
    return pd.DataFrame(rows + glue)


def test_score_prediction_files_orders_by_idx(tmp_path):
    dev_paths = []
    for adv_set, labels in HAND_LABELS.items():
        path = tmp_path / "dev" / f"{adv_set}.parquet"
        path.parent.mkdir(exist_ok=True)
        pd.DataFrame({"idx": range(len(labels)), "text_a": "x", "text_b": None, "label": labels}).to_parquet(path)
        dev_paths.append(path)
    sst2 = tmp_path / "sst2.parquet"
    _prediction_rows("sst2", HAND_PREDS["sst2"], order=[3, 1, 0, 2]).to_parquet(sst2)
    rte = tmp_path / "rte.parquet"
    _prediction_rows("rte", HAND_PREDS["rte"], order=[0, 1]).to_parquet(rte)
    preds, score = score_prediction_files([sst2, rte], dev_paths)
    assert preds == {"sst2": HAND_PREDS["sst2"], "rte": HAND_PREDS["rte"]}
    assert list(preds) == ["sst2", "rte"]
    assert score["score"] == pytest.approx(0.375) and score["complete"] is False
    bad = tmp_path / "bad.parquet"
    _prediction_rows("sst2", HAND_PREDS["sst2"], order=[0, 1, 2]).to_parquet(bad)
    with pytest.raises(ValueError, match="'sst2': the predicted idx do not match"):
        score_prediction_files([bad], dev_paths)


def test_item_statistic_accuracy_matches_with_ci_draw_for_draw():
    labels, preds = np.array([0, 1, 1, 0, 1, 1, 0]), np.array([0, 1, 0, 0, 1, 0, 1])
    record = statistic_record(accuracy_statistic(labels, preds), 300, 11)
    assert record == with_ci("accuracy", labels, preds, 300, 11)


def test_two_level_bootstrap_with_one_run_is_its_item_bootstrap():
    stat = accuracy_statistic(np.array([1, 0, 1, 1, 0, 1]), np.array([1, 1, 1, 0, 0, 1]))
    mean, low, high = two_level_bootstrap([stat], [5], 400)
    record = statistic_record(stat, 400, 5)
    assert (mean, low, high) == (record["value"], record["ci_low"], record["ci_high"])


def test_two_level_bootstrap_covers_the_spread_between_seeds():
    # Run A gets every item right, run B none: resampling items changes nothing, resampling the two seeds gives
    # means 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4, so the 95% interval is [0, 1] around the mean 0.5
    # (a t-interval over the two seeds would be 0.5 +- 6.35, far outside [0, 1]).
    right = accuracy_statistic(np.ones(8, dtype=int), np.ones(8, dtype=int))
    wrong = accuracy_statistic(np.ones(8, dtype=int), np.zeros(8, dtype=int))
    mean, low, high = two_level_bootstrap([right, wrong], [1, 2], 2000, choice_seed=3)
    assert (mean, low, high) == (0.5, 0.0, 1.0)
    # identical runs: the seed level adds nothing, the interval is the item bootstrap's width again
    same = two_level_bootstrap([right, right], [1, 2], 500)
    assert same == (1.0, 1.0, 1.0)


def test_attack_success_ratio_ignores_resamples_without_an_attacked_item():
    # columns: original right, attack succeeded. Two items: one attacked with success, one skipped.
    stat = ItemStatistic((np.array([[1.0, 1.0], [0.0, 0.0]]),), ratio_of_columns, 1)
    assert stat.value() == 1.0
    draws = item_bootstrap(stat, 400, 0)
    assert np.isnan(draws).any() and set(np.unique(draws[np.isfinite(draws)])) == {1.0}
    assert statistic_record(stat, 400, 0) == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 1}
