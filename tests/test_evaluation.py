"""Predictions (order, padding, originals) and metrics.json values against hand-computed ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kernels.evaluation.evaluate import PREDICTION_COLUMNS, compute_metrics, original_frame, predict_all
from kernels.evaluation.predict import predict_frame
from test_training_support import entailment_frame, make_tokenizer, sentiment_frame, tiny_llama

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_llama(tokenizer, seed=1)


def advglue_frame() -> pd.DataFrame:
    base = entailment_frame(6, seed=11)
    frame = base.assign(level=["word", "word", "sentence", "sentence", "human", "word"],
                        method=["TextFooler", "TextBugger", "T3", "CheckList", "CheckList", "SememePSO"],
                        original_text_a=None, original_text_b=None)
    frame["original_text_a"] = frame["original_text_a"].astype(object)
    frame["original_text_b"] = frame["original_text_b"].astype(object)
    # rows 0 and 2 perturbed the premise, rows 1, 3 and 5 the hypothesis, row 4 is human-written
    frame.loc[0, "original_text_a"] = frame.loc[0, "text_a"]
    frame.loc[0, "text_a"] = frame.loc[0, "text_a"].replace("critics", "critcs")
    frame.loc[2, "original_text_a"] = "reviewers said so"
    frame.loc[1, "original_text_b"] = "the cast was superb"
    frame.loc[3, "original_text_b"] = "the script was dull"
    frame.loc[5, "original_text_b"] = "the ending was messy"
    return frame


def test_original_frame_puts_back_the_perturbed_field():
    adv = advglue_frame()
    clean = original_frame(adv)
    assert clean["idx"].tolist() == [0, 1, 2, 3, 5]
    assert clean.loc[0, "text_a"].startswith("critics agreed") and clean.loc[0, "text_b"] == adv.loc[0, "text_b"]
    assert clean.loc[1, "text_b"] == "the cast was superb" and clean.loc[1, "text_a"] == adv.loc[1, "text_a"]
    both = adv.copy()
    both.loc[4, ["original_text_a", "original_text_b"]] = ["x", "y"]
    with pytest.raises(ValueError, match="row 4 has both"):
        original_frame(both, source="rte.parquet")
    with pytest.raises(ValueError, match="rte.parquet: missing column 'original_text_a'"):
        original_frame(adv.drop(columns="original_text_a"), source="rte.parquet")


def test_batched_length_sorted_predictions_match_one_by_one(model, tokenizer):
    frame = pd.concat([entailment_frame(20), sentiment_frame(17)], ignore_index=True)
    frame["idx"] = range(len(frame))
    batched = predict_frame(model, tokenizer, frame, max_length=40, batch_size=8)
    single = predict_frame(model, tokenizer, frame, max_length=40, batch_size=1)  # no padding at all
    assert batched["idx"].tolist() == frame["idx"].tolist()
    assert batched["label"].tolist() == frame["label"].tolist()
    assert (batched["pred"] == single["pred"]).all()
    np.testing.assert_allclose(batched["prob"], single["prob"], atol=1e-5)
    assert ((batched["prob"] >= 0.5) & (batched["prob"] <= 1)).all()  # prob of the argmax of 2 classes


def test_predict_all_rows_and_originals(model, tokenizer):
    glue = {"validation": entailment_frame(12, seed=4)}
    adv = advglue_frame()
    out = predict_all(model, tokenizer, glue, {"rte": adv}, max_length=40, batch_size=4)
    assert list(out.columns) == PREDICTION_COLUMNS
    counts = out.groupby("dataset").size().to_dict()
    assert counts == {"glue": 12, "advglue": 6, "advglue_original": 5}
    assert out.loc[out["dataset"] == "glue", "level"].isna().all()
    assert out.loc[out["dataset"] == "advglue", "idx"].tolist() == list(range(6))  # dev.json order kept
    originals = out[out["dataset"] == "advglue_original"]
    expected = predict_frame(model, tokenizer, original_frame(adv), max_length=40)
    assert originals["pred"].tolist() == expected["pred"].tolist()
    assert originals["level"].tolist() == ["word", "word", "sentence", "sentence", "word"]


def hand_predictions() -> pd.DataFrame:
    rows = []
    glue_labels = [0, 1] * 5
    glue_preds = [0, 1, 0, 1, 0, 1, 0, 1, 1, 0]  # 8 of 10 correct
    for i, (lab, pred) in enumerate(zip(glue_labels, glue_preds)):
        rows.append(("glue", "validation", i, lab, pred, None, None))
    adv = [  # idx, label, adversarial pred, original pred (None: human item), level, method
        (0, 1, 1, 1, "word", "TextFooler"),
        (1, 0, 1, 0, "word", "TextFooler"),   # attack succeeds
        (2, 1, 0, 0, "word", "SememePSO"),    # original already wrong: no success
        (3, 0, 1, 0, "sentence", "T3"),       # attack succeeds
        (4, 1, 1, 1, "sentence", "CheckList"),
        (5, 0, 1, None, "human", "CheckList"),
    ]
    for idx, lab, pred, orig, level, method in adv:
        rows.append(("advglue", "sst2", idx, lab, pred, level, method))
        if orig is not None:
            rows.append(("advglue_original", "sst2", idx, lab, orig, level, method))
    frame = pd.DataFrame(rows, columns=["dataset", "split", "idx", "label", "pred", "level", "method"])
    return frame.assign(prob=0.9)[PREDICTION_COLUMNS]


def test_compute_metrics_hand_computed_values():
    m = compute_metrics(hand_predictions(), "sst2", bootstrap_samples=200, bootstrap_seed=0, model="m", seed=0)
    assert (m["model"], m["task"], m["seed"]) == ("m", "sst2", 0)
    assert m["glue"]["validation"]["accuracy"]["value"] == pytest.approx(0.8)
    assert m["glue"]["validation"]["accuracy"]["n"] == 10
    block = m["advglue"]["sst2"]
    assert block["glue_split"] == "validation"
    assert block["metrics"]["accuracy"]["value"] == pytest.approx(2 / 6)
    assert set(block["metrics"]) == {"accuracy"}  # sst2 has no F1
    levels = {k: v["accuracy"]["value"] for k, v in block["by_level"].items()}
    assert levels == pytest.approx({"word": 1 / 3, "sentence": 1 / 2, "human": 0.0})
    # a method only within its level: CheckList is sentence-level (idx 4, right) and human (idx 5, wrong)
    methods = {(level, method): v["accuracy"]["value"] for level, per in block["by_level_method"].items()
               for method, v in per.items()}
    assert methods == pytest.approx({("word", "TextFooler"): 0.5, ("word", "SememePSO"): 0.0,
                                     ("sentence", "T3"): 0.0, ("sentence", "CheckList"): 1.0,
                                     ("human", "CheckList"): 0.0})
    assert "by_method" not in block
    assert block["original"]["accuracy"]["value"] == pytest.approx(4 / 5)
    assert block["original"]["adversarial_accuracy"]["value"] == pytest.approx(2 / 5)
    # TextAttack's attack success rate: over the 4 items whose original is right (idx 2 is skipped), 2 flip
    asr = block["attack_success_rate"]
    assert asr["all"]["value"] == pytest.approx(2 / 4)
    assert (asr["all"]["n"], asr["all"]["skipped"]) == (4, 1)
    assert {k: (v["value"], v["n"], v["skipped"]) for k, v in asr["by_level"].items()} == {
        "word": (pytest.approx(1 / 2), 2, 1), "sentence": (pytest.approx(1 / 2), 2, 0)}
    # paired drop: the same 5 items clean (4/5 right) and adversarial (2/5 right); human items have no pair
    drop = block["robustness_drop"]
    assert drop["all"]["value"] == pytest.approx(4 / 5 - 2 / 5) and drop["all"]["n"] == 5
    assert {k: v["value"] for k, v in drop["by_level"].items()} == pytest.approx(
        {"word": 2 / 3 - 1 / 3, "sentence": 1.0 - 1 / 2})
    unpaired = block["robustness_drop_unpaired"]
    assert unpaired["all"]["value"] == pytest.approx(0.8 - 2 / 6) and unpaired["all"]["n"] == 6
    assert {k: v["value"] for k, v in unpaired["by_level"].items()} == pytest.approx(
        {"word": 0.8 - 1 / 3, "sentence": 0.3, "human": 0.8})
    for record in (block["metrics"]["accuracy"], asr["all"], drop["all"], unpaired["all"]):
        assert record["ci_low"] <= record["value"] <= record["ci_high"]


def test_attack_success_rate_without_a_correct_original_is_null():
    frame = hand_predictions()
    originals = frame["dataset"] == "advglue_original"
    frame.loc[originals, "pred"] = 1 - frame.loc[originals, "label"]  # every original wrong: nothing to attack
    asr = compute_metrics(frame, "sst2", bootstrap_samples=50)["advglue"]["sst2"]["attack_success_rate"]["all"]
    assert asr == {"value": None, "ci_low": None, "ci_high": None, "n": 0, "skipped": 5}


def test_compute_metrics_qqp_has_f1_and_mnli_pairs_splits():
    frame = hand_predictions()
    qqp = compute_metrics(frame.replace({"split": {"sst2": "qqp"}}), "qqp", bootstrap_samples=0)
    # GLUE: labels [0,1]*5, preds: TP=4, FP=1, FN=1 -> F1 = 8/10
    assert qqp["glue"]["validation"]["f1"]["value"] == pytest.approx(0.8)
    assert qqp["glue"]["validation"]["f1"]["ci_low"] is None
    # AdvGLUE qqp: labels [1,0,1,0,1,0], preds [1,1,0,1,1,1]: TP=2, FP=3, FN=1 -> F1 = 2TP/(2TP+FP+FN) = 4/8
    assert qqp["advglue"]["qqp"]["metrics"]["f1"]["value"] == pytest.approx(0.5)
    mnli = frame.replace({"split": {"sst2": "mnli-mm", "validation": "validation_mismatched"}})
    result = compute_metrics(mnli, "mnli", bootstrap_samples=0)
    assert result["advglue"]["mnli-mm"]["glue_split"] == "validation_mismatched"
    assert result["advglue"]["mnli-mm"]["robustness_drop_unpaired"]["all"]["value"] == pytest.approx(0.8 - 2 / 6)


def test_paired_drop_of_unchanged_predictions_is_exactly_zero_with_a_zero_interval():
    """The paired drop resamples items once for both halves: when every adversarial version is predicted like
    its clean original, every resample's drop is 0, so its interval is exactly [0, 0] (two independent
    resamples of the clean and adversarial halves would give a wide interval around 0)."""
    frame = hand_predictions()
    originals = frame[frame["dataset"] == "advglue_original"].set_index("idx")["pred"]
    adversarial = (frame["dataset"] == "advglue") & frame["idx"].isin(originals.index)
    frame.loc[adversarial, "pred"] = frame.loc[adversarial, "idx"].map(originals)
    block = compute_metrics(frame, "sst2", bootstrap_samples=500, bootstrap_seed=3)["advglue"]["sst2"]
    assert block["original"]["accuracy"]["value"] == pytest.approx(4 / 5)  # right and wrong items: a real spread
    assert 0.0 < block["original"]["accuracy"]["ci_low"] < block["original"]["accuracy"]["ci_high"]
    for level, record in [("all", block["robustness_drop"]["all"]), *block["robustness_drop"]["by_level"].items()]:
        assert (record["value"], record["ci_low"], record["ci_high"]) == (0.0, 0.0, 0.0), level
    assert block["attack_success_rate"]["all"]["ci_high"] == 0.0
