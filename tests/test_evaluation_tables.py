"""Tidy tables from metrics.json / score json / train logs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kernels.evaluation.evaluate import compute_metrics
from kernels.evaluation.tables import (metrics_rows, metrics_table, run_from_path, scores_table,
                                       throughput_row, throughput_table)
from test_evaluation import hand_predictions


def test_metrics_rows_cover_every_metric_once():
    metrics = compute_metrics(hand_predictions(), "sst2", bootstrap_samples=0, model="gla", seed=1)
    rows = pd.DataFrame(metrics_rows(metrics))
    key = ["dataset", "split", "level", "method", "metric"]
    assert not rows.duplicated(key).any()
    glue = rows[rows["dataset"] == "glue"]
    assert glue[key].values.tolist() == [["glue", "validation", "all", "all", "accuracy"]]
    adv = rows[(rows["dataset"] == "advglue") & (rows["metric"] == "accuracy")]
    assert len(adv) == 1 + 3 + 5  # total, 3 levels, 5 (level, method) cells
    assert adv[(adv["level"] == "human") & (adv["method"] == "CheckList")]["value"].tolist() == [0.0]
    asr = rows[rows["metric"] == "attack_success_rate"].set_index("level")
    assert asr["value"].to_dict() == pytest.approx({"all": 0.5, "word": 0.5, "sentence": 0.5})
    assert asr["n"].to_dict() == {"all": 4, "word": 2, "sentence": 2}
    assert asr["skipped"].to_dict() == {"all": 1, "word": 1, "sentence": 0}
    drop = rows[rows["metric"] == "robustness_drop"].set_index("level")["value"]
    assert drop.to_dict() == pytest.approx({"all": 0.4, "word": 1 / 3, "sentence": 0.5})
    unpaired = rows[rows["metric"] == "robustness_drop_unpaired"].set_index("level")["value"]
    assert unpaired["human"] == pytest.approx(0.8)
    orig = rows[rows["dataset"] == "advglue_original"].set_index("level")["value"]
    assert orig["all"] == pytest.approx(0.8)
    assert (rows["model"] == "gla").all() and (rows["seed"] == 1).all()


def test_metrics_rows_require_identity():
    metrics = compute_metrics(hand_predictions(), "sst2", bootstrap_samples=0)
    with pytest.raises(ValueError, match="x.json: missing field 'model'"):
        metrics_rows(metrics, source="x.json")


def test_seed_aggregates_and_labels(tmp_path):
    paths = []
    for seed, flip in ((0, False), (1, True)):
        frame = hand_predictions()
        if flip:  # one more wrong GLUE prediction: accuracy 0.7 instead of 0.8
            frame.loc[0, "pred"] = 1 - frame.loc[0, "pred"]
        metrics = compute_metrics(frame, "sst2", bootstrap_samples=0, model="gla", seed=seed)
        path = tmp_path / "gla" / "sst2" / f"seed{seed}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(metrics))
        paths.append(path)
    table = metrics_table(paths, {"gla": "GLA"})
    glue = table[table["dataset"] == "glue"]
    assert glue["value"].tolist() == pytest.approx([0.8, 0.7])
    assert glue["mean_over_seeds"].tolist() == pytest.approx([0.75, 0.75])
    assert glue["std_over_seeds"].iloc[0] == pytest.approx(pd.Series([0.8, 0.7]).std())
    assert (table["model_label"] == "GLA").all() and (table["n_seeds"] == 2).all()


def test_scores_table_reads_identity_from_file_or_name(tmp_path):
    named = tmp_path / "mmfree" / "advglue_score_seed3.json"
    named.parent.mkdir()
    named.write_text(json.dumps({"score": 0.4, "per_task": {"sst2": 0.5, "rte": 0.3}, "complete": False}))
    table = scores_table([named])
    assert table[["model", "seed", "task", "score"]].values.tolist() == [
        ["mmfree", 3, "overall", 0.4], ["mmfree", 3, "rte", 0.3], ["mmfree", 3, "sst2", 0.5]]
    bad = tmp_path / "score.json"
    bad.write_text(json.dumps({"score": 0.4, "per_task": {}, "complete": False}))
    with pytest.raises(ValueError, match="score.json: no 'model'/'seed'"):
        scores_table([bad])


def test_throughput_from_train_logs(tmp_path):
    log = tmp_path / "transformer_pp" / "rte" / "seed0" / "train_log.csv"
    log.parent.mkdir(parents=True)
    pd.DataFrame({"step": [10, 20, 25], "loss": [0.7, 0.6, 0.5], "lr": [1e-3, 5e-4, 0.0],
                  "tokens_per_s": [100.0, 300.0, 200.0], "elapsed_s": [1.0, 2.0, 2.5]}).to_csv(log, index=False)
    table = throughput_table([log])
    row = table.iloc[0]
    assert (row["model"], row["task"], row["seed"], row["steps"]) == ("transformer_pp", "rte", 0, 25)
    assert row["tokens_per_s_median"] == 200.0 and row["elapsed_s"] == 2.5 and row["final_loss"] == 0.5
    assert run_from_path("results/models/gla/mnli/seed12/train_log.csv") == ("gla", "mnli", 12)
    with pytest.raises(ValueError, match="cannot read model/task/seed"):
        run_from_path("train_log.csv")
    with pytest.raises(ValueError, match="x.csv: train log is empty"):
        throughput_row(pd.DataFrame(columns=["step", "loss", "tokens_per_s", "elapsed_s"]), "x.csv")


def _write_run(tmp_path, frame, seed, samples):
    metrics = compute_metrics(frame, "sst2", bootstrap_samples=samples, bootstrap_seed=7, model="gla", seed=seed)
    run = tmp_path / "gla" / "sst2" / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(metrics))
    frame.to_parquet(run / "predictions.parquet")
    return run / "metrics.json", run / "predictions.parquet"


def test_one_interval_kind_whatever_the_seed_count(tmp_path):
    # One seed: the over-seeds interval is the run's own item bootstrap.
    metrics_path, predictions_path = _write_run(tmp_path / "one", hand_predictions(), 0, 200)
    one = metrics_table([metrics_path], None, [predictions_path])
    rows = one[one["ci_low"].notna()]
    assert (rows["ci_low_over_seeds"] == rows["ci_low"]).all() and (rows["ci_high_over_seeds"] == rows["ci_high"]).all()
    # Two seeds: a two-level bootstrap from the predictions, never a t-interval; without predictions none at all.
    paths = []
    for seed, flip in ((0, False), (1, True)):
        frame = hand_predictions()
        if flip:
            glue = frame["dataset"] == "glue"
            frame.loc[glue, "pred"] = frame.loc[glue, "label"]  # every GLUE item right
        paths.append(_write_run(tmp_path / "two", frame, seed, 200))
    metrics_paths, prediction_paths = zip(*paths)
    table = metrics_table(metrics_paths, None, prediction_paths)
    glue = table[table["dataset"] == "glue"].iloc[0]
    assert glue["mean_over_seeds"] == pytest.approx(0.9)
    assert glue["ci_low_over_seeds"] < 0.9 < glue["ci_high_over_seeds"] <= 1.0
    t_half_width = 12.706 * pd.Series([0.8, 1.0]).std() / 2 ** 0.5
    assert glue["ci_low_over_seeds"] > 0.9 - t_half_width  # not the old t-interval over seeds
    assert table["ci_low_over_seeds"].notna().sum() == table["ci_low"].notna().sum()
    bare = metrics_table(metrics_paths, None)
    assert bare["ci_low_over_seeds"].isna().all()


def test_metrics_csv_keeps_the_paired_adversarial_accuracy():
    """The other half of the paired drop: accuracy on the adversarial versions of the items with a clean
    original, per level, so that metrics.csv's paired drop is advglue_original accuracy minus it."""
    metrics = compute_metrics(hand_predictions(), "sst2", bootstrap_samples=50, model="gla", seed=0)
    rows = pd.DataFrame(metrics_rows(metrics))
    paired = rows[rows["metric"] == "paired_adversarial_accuracy"].set_index("level")
    assert set(paired["dataset"]) == {"advglue"}
    assert paired["value"].to_dict() == pytest.approx({"all": 2 / 5, "word": 1 / 3, "sentence": 1 / 2})
    assert paired["n"].to_dict() == {"all": 5, "word": 3, "sentence": 2}
    original = rows[rows["dataset"] == "advglue_original"].set_index("level")["value"]
    drop = rows[rows["metric"] == "robustness_drop"].set_index("level")["value"]
    for level in ("all", "word", "sentence"):
        assert drop[level] == pytest.approx(original[level] - paired.loc[level, "value"])
    assert (paired["ci_low"] <= paired["value"]).all() and (paired["value"] <= paired["ci_high"]).all()


def test_majority_prediction_share_from_the_predictions(tmp_path):
    frame = hand_predictions()
    glue = frame["dataset"] == "glue"
    frame.loc[glue, "pred"] = 1  # one class for every GLUE validation item
    metrics_path, predictions_path = _write_run(tmp_path, frame, 0, 20)
    table = metrics_table([metrics_path], None, [predictions_path])
    share = table[table["metric"] == "majority_prediction_share"].set_index(["dataset", "split"])
    assert share.loc[("glue", "validation"), "value"] == 1.0 and share.loc[("glue", "validation"), "n"] == 10
    # hand_predictions' AdvGLUE predictions 1, 1, 0, 1, 1, 1 and originals 1, 0, 0, 0, 1
    assert share.loc[("advglue", "sst2"), "value"] == pytest.approx(5 / 6)
    assert share.loc[("advglue_original", "sst2"), "value"] == pytest.approx(3 / 5)
    assert share["ci_low"].isna().all() and (share["level"] == "all").all()
    # without the predictions there is nothing to count from
    assert "majority_prediction_share" not in set(metrics_table([metrics_path], None)["metric"])
