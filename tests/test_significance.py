"""Exact McNemar tests between models, Holm correction, pairwise_significance.csv, and metrics.json
recomputed from predictions.parquet on a small real evaluation run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import binomtest

from kernels.evaluation.evaluate import PREDICTION_COLUMNS, compute_metrics, predict_all
from kernels.evaluation.significance import (SIGNIFICANCE_COLUMNS, check_metrics_match, check_runs_match,
                                             holm_adjust, mcnemar_exact, metrics_mismatches, paired_items,
                                             read_predictions, significance_table)
from kernels.io import write_json, write_parquet
from test_evaluation import advglue_frame, hand_predictions
from test_training_support import entailment_frame, make_tokenizer, tiny_llama

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


# --- the test itself ------------------------------------------------------------------------------

def test_mcnemar_hand_computed_cases():
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)  # 2 * 0.5**5
    assert mcnemar_exact(5, 0) == pytest.approx(0.0625)
    assert mcnemar_exact(4, 4) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1, 5) == pytest.approx(2 * 7 / 64)  # P(X <= 1), X ~ Bin(6, 1/2) = 7/64
    with pytest.raises(ValueError, match="b=-1"):
        mcnemar_exact(-1, 3)


@pytest.mark.parametrize("b, c", [(0, 1), (1, 2), (3, 10), (7, 7), (12, 30), (40, 21), (150, 190), (900, 1010)])
def test_mcnemar_equals_scipy_binomtest(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-300)


def test_holm_hand_example():
    # sorted: 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06; back in input order
    assert holm_adjust([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5, 0.2]).tolist() == pytest.approx([0.5, 0.4])
    assert holm_adjust([0.7, 0.6, 0.9]).tolist() == pytest.approx([1.0, 1.0, 1.0])  # capped at 1
    assert holm_adjust([0.04]).tolist() == [0.04] and holm_adjust([]).size == 0
    with pytest.raises(ValueError, match="p-values must lie in"):
        holm_adjust([0.1, 1.5])


# --- pairing the items of two models ------------------------------------------------------------

def predictions(preds_by_set: dict[tuple[str, str], list[int]], labels_by_set: dict[tuple[str, str], list[int]],
                levels: list[str] | None = None) -> pd.DataFrame:
    """A predictions.parquet frame; AdvGLUE rows get ``levels`` in item order."""
    rows = []
    for (dataset, split), preds in preds_by_set.items():
        for idx, (label, pred) in enumerate(zip(labels_by_set[(dataset, split)], preds)):
            level = None if dataset == "glue" else levels[idx]
            rows.append((dataset, split, idx, label, pred, 0.9, level, None if level is None else "m"))
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


GLUE, ADV = ("glue", "validation"), ("advglue", "sst2")
LABELS = {GLUE: [0, 1, 0, 1, 0, 1, 0, 1, 0, 1], ADV: [1, 0, 1, 0, 1, 0]}
LEVELS = ["word", "word", "word", "sentence", "sentence", "human"]
# right/wrong patterns against LABELS (1 = right), per model:
RIGHT = {
    "transformer_pp": {GLUE: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], ADV: [1, 1, 0, 1, 1, 0]},
    "gla": {GLUE: [1, 1, 1, 1, 1, 1, 0, 0, 0, 0], ADV: [1, 0, 1, 1, 0, 0]},
    "mmfree": {GLUE: [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], ADV: [0, 0, 0, 1, 1, 1]},
}


def model_frame(model: str) -> pd.DataFrame:
    preds = {key: [lab if ok else 1 - lab for lab, ok in zip(LABELS[key], RIGHT[model][key])] for key in LABELS}
    return predictions(preds, LABELS, LEVELS)


def test_paired_items_refuses_different_items_and_labels():
    a, b = model_frame("gla"), model_frame("mmfree")
    paired = paired_items(a, b)
    assert len(paired) == 16 and list(paired.columns) == ["dataset", "split", "idx", "level", "label", "pred_a",
                                                          "pred_b"]
    with pytest.raises(ValueError, match=r"gla\.parquet and mmfree\.parquet cover different items.*"
                                         r"only in the first: 1 item.*'advglue', 'sst2', 5.*second: 0 item"):
        paired_items(a, b.iloc[:-1], "gla.parquet", "mmfree.parquet")
    relabelled = b.copy()
    relabelled.loc[2, "label"] = 1 - relabelled.loc[2, "label"]
    with pytest.raises(ValueError, match=r"A\.parquet and B\.parquet: labels disagree on 1 item.*'glue', "
                                         r"'validation', 2"):
        paired_items(a, relabelled, "A.parquet", "B.parquet")
    relevelled = b.copy()
    relevelled.loc[12, "level"] = "human"
    with pytest.raises(ValueError, match="levels disagree"):
        paired_items(a, relevelled)


def write_run(root: Path, model: str, task: str, seed: int, frame: pd.DataFrame) -> Path:
    path = root / model / task / f"seed{seed}" / "predictions.parquet"
    write_parquet(path, frame)
    return path


def test_significance_table_from_prediction_files(tmp_path):
    paths = [write_run(tmp_path, m, "sst2", seed, model_frame(m))
             for m in ("transformer_pp", "gla", "mmfree") for seed in (0, 1)]
    table = significance_table(paths)
    assert list(table.columns) == SIGNIFICANCE_COLUMNS
    # 3 pairs x 2 seeds x (glue all + advglue all + 3 advglue levels)
    assert len(table) == 3 * 2 * 5
    pairs = table[["model_a", "model_b"]].drop_duplicates().values.tolist()
    assert pairs == [["transformer_pp", "gla"], ["transformer_pp", "mmfree"], ["gla", "mmfree"]]  # config order
    key = ["model_a", "model_b", "seed", "dataset", "level"]
    rows = table.set_index(key)

    glue = rows.loc[("transformer_pp", "gla", 0, "glue", "all")]
    assert (glue["n"], glue["b"], glue["c"]) == (10, 4, 0)
    assert glue["acc_a"] == 1.0 and glue["acc_b"] == pytest.approx(0.6) and glue["diff"] == pytest.approx(0.4)
    assert glue["p_value"] == pytest.approx(0.125) and not glue["significant"]
    tm = rows.loc[("transformer_pp", "mmfree", 0, "glue", "all")]
    assert (tm["b"], tm["c"], tm["p_value"]) == (5, 0, pytest.approx(0.0625))
    gm = rows.loc[("gla", "mmfree", 0, "glue", "all")]
    assert (gm["b"], gm["c"], gm["p_value"]) == (5, 4, 1.0)  # 2 * P(X <= 4), X ~ Bin(9, 1/2) = 2 * 0.5, capped
    word = rows.loc[("transformer_pp", "gla", 0, "advglue", "word")]  # items 0-2: [1,1,0] vs [1,0,1]
    assert (word["n"], word["b"], word["c"], word["p_value"]) == (3, 1, 1, 1.0)
    human = rows.loc[("gla", "mmfree", 1, "advglue", "human")]
    assert (human["n"], human["b"], human["c"], human["diff"]) == (1, 0, 1, -1.0)
    assert table.loc[table["dataset"] == "glue", "split"].eq("validation").all()
    assert table.loc[table["dataset"] == "advglue", "split"].eq("sst2").all()

    # diff is acc_a - acc_b = (b - c) / n on every row
    np.testing.assert_allclose(table["diff"], (table["b"] - table["c"]) / table["n"])
    # Holm within each (task, seed, dataset, split, level): the three model pairs of the GLUE family
    family = table[(table["seed"] == 0) & (table["dataset"] == "glue")]
    np.testing.assert_allclose(family["p_holm"], holm_adjust(family["p_value"]))
    assert (table["p_holm"] >= table["p_value"]).all()
    assert table["significant"].tolist() == (table["p_value"] < 0.05).tolist()
    lenient = significance_table(paths, alpha=0.2).set_index(key)  # alpha is the threshold used
    assert lenient.loc[("transformer_pp", "gla", 0, "glue", "all"), "significant"]


def test_significance_table_matches_metrics_accuracies(tmp_path):
    paths = [write_run(tmp_path, m, "sst2", 3, model_frame(m)) for m in ("gla", "mmfree")]
    table = significance_table(paths).set_index(["dataset", "level"])
    for model, column in (("gla", "acc_a"), ("mmfree", "acc_b")):
        metrics = compute_metrics(model_frame(model), "sst2", bootstrap_samples=0)
        assert table.loc[("glue", "all"), column] == pytest.approx(metrics["glue"]["validation"]["accuracy"]["value"])
        block = metrics["advglue"]["sst2"]
        assert table.loc[("advglue", "all"), column] == pytest.approx(block["metrics"]["accuracy"]["value"])
        for level, values in block["by_level"].items():
            assert table.loc[("advglue", level), column] == pytest.approx(values["accuracy"]["value"])


def test_significance_table_errors_and_edge_cases(tmp_path):
    a = write_run(tmp_path, "gla", "rte", 0, model_frame("gla"))
    b = write_run(tmp_path, "mmfree", "rte", 0, model_frame("mmfree").iloc[:12])
    with pytest.raises(ValueError, match=r"gla/rte/seed0/predictions\.parquet and .*mmfree/rte/seed0/"
                                         r"predictions\.parquet cover different items"):
        significance_table([a, b])
    alone = significance_table([a])  # one model: no pair, an empty table with the columns
    assert alone.empty and list(alone.columns) == SIGNIFICANCE_COLUMNS
    duplicated = write_run(tmp_path / "x", "gla", "rte", 1, pd.concat([model_frame("gla")] * 2))
    with pytest.raises(ValueError, match=r"predictions\.parquet: 16 duplicated item\(s\)"):
        read_predictions(duplicated)
    missing = write_run(tmp_path / "y", "gla", "rte", 1, model_frame("gla").drop(columns="label"))
    with pytest.raises(ValueError, match=r"predictions\.parquet: missing column\(s\) \['label'\]"):
        read_predictions(missing)
    with pytest.raises(ValueError, match="a second predictions file for model gla"):
        significance_table([a, write_run(tmp_path / "z", "gla", "rte", 0, model_frame("gla"))])


# --- metrics.json recomputed from predictions.parquet ---------------------------------------------

@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """Two tiny classifiers evaluated for real (predict_all + compute_metrics) on RTE-like data."""
    root = tmp_path_factory.mktemp("eval")
    tokenizer = make_tokenizer()
    glue = {"validation": entailment_frame(24, seed=4)}
    adv = {"rte": advglue_frame()}
    runs = {}
    for model_seed, name in ((1, "transformer_pp"), (2, "gla")):
        model = tiny_llama(tokenizer, seed=model_seed)
        preds = predict_all(model, tokenizer, glue, adv, max_length=40, batch_size=8)
        metrics = compute_metrics(preds, "rte", bootstrap_samples=50, bootstrap_seed=0, model=name, seed=0)
        run_dir = root / name / "rte" / "seed0"
        write_parquet(run_dir / "predictions.parquet", preds)
        write_json(run_dir / "metrics.json", metrics)
        runs[name] = run_dir
    return runs


def test_recompute_check_on_a_real_evaluation_run(real_runs):
    run = real_runs["transformer_pp"]
    check_metrics_match(run / "metrics.json", run / "predictions.parquet")  # consistent: no error
    metrics = json.loads((run / "metrics.json").read_text())
    preds = pd.read_parquet(run / "predictions.parquet")
    assert metrics_mismatches(metrics, preds) == []
    # every level and the originals were checked, not only the totals
    assert set(metrics["advglue"]["rte"]["by_level"]) == {"word", "sentence", "human"}
    assert set(metrics["advglue"]["rte"]["original"]["by_level"]) == {"word", "sentence"}

    tampered = json.loads(json.dumps(metrics))
    tampered["advglue"]["rte"]["by_level"]["word"]["accuracy"]["value"] += 0.25
    tampered["advglue"]["rte"]["original"]["accuracy"]["n"] += 1
    problems = metrics_mismatches(tampered, preds)
    assert len(problems) == 2
    assert problems[0].startswith("advglue/rte/by_level/word/accuracy: metrics.json has")
    assert problems[1].startswith("advglue/rte/original/accuracy:")

    flipped = preds.copy()
    first_glue = flipped.index[flipped["dataset"] == "glue"][0]
    flipped.loc[first_glue, "pred"] = 1 - flipped.loc[first_glue, "pred"]
    assert [p.split(":")[0] for p in metrics_mismatches(metrics, flipped)] == ["glue/validation/accuracy"]
    write_parquet(run.parent / "flipped.parquet", flipped)
    with pytest.raises(ValueError, match=r"metrics\.json does not match .*flipped\.parquet: glue/validation"):
        check_metrics_match(run / "metrics.json", run.parent / "flipped.parquet")


def test_recompute_check_covers_f1():
    # hand predictions as QQP: metrics.json then also holds F1 on GLUE and AdvGLUE
    frame = hand_predictions().replace({"split": {"sst2": "qqp"}})
    metrics = compute_metrics(frame, "qqp", bootstrap_samples=0)
    assert metrics_mismatches(metrics, frame) == []
    metrics["glue"]["validation"]["mcc"] = {"value": 0.3, "n": 10}  # a metric it cannot recompute: skipped
    assert metrics_mismatches(metrics, frame) == []
    metrics["advglue"]["qqp"]["metrics"]["f1"]["value"] = 0.1
    assert [p.split(":")[0] for p in metrics_mismatches(metrics, frame)] == ["advglue/qqp/metrics/f1"]


def test_significance_on_real_runs_and_run_matching(real_runs):
    preds = [real_runs[m] / "predictions.parquet" for m in ("transformer_pp", "gla")]
    metrics = [real_runs[m] / "metrics.json" for m in ("transformer_pp", "gla")]
    assert check_runs_match(metrics, preds) == 2
    with pytest.raises(ValueError, match="1 run\\(s\\) have metrics.json or predictions.parquet but not both"):
        check_runs_match(metrics, preds[:1])
    table = significance_table(preds)
    assert set(table["dataset"]) == {"glue", "advglue", "advglue_original"}
    orig = table[(table["dataset"] == "advglue_original")].set_index("level")
    assert orig.loc["all", "n"] == 5 and set(orig.index) == {"all", "word", "sentence"}
    m = json.loads(metrics[0].read_text())
    assert orig.loc["all", "acc_a"] == pytest.approx(m["advglue"]["rte"]["original"]["accuracy"]["value"])
    glue = table[table["dataset"] == "glue"].iloc[0]
    assert glue["acc_a"] == pytest.approx(m["glue"]["validation"]["accuracy"]["value"]) and glue["n"] == 24


def test_tables_eval_script_writes_the_significance_table(real_runs, tmp_path):
    spec = importlib.util.spec_from_file_location("script_tables_eval", REPO / "workflow_scripts" / "tables_eval.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)  # no `snakemake` global and not __main__: defines main only
    models = ("transformer_pp", "gla")
    out = tmp_path / "tables"
    script.main(metrics=[str(real_runs[m] / "metrics.json") for m in models], scores=[], train_logs=[],
                models={m: {"label": m.upper()} for m in models}, metrics_out=str(out / "metrics.csv"),
                scores_out=str(out / "advglue_scores.csv"), throughput_out=str(out / "finetune_throughput.csv"),
                predictions=[str(real_runs[m] / "predictions.parquet") for m in models],
                significance_out=str(out / "pairwise_significance.csv"),
                robustness_out=str(out / "pairwise_robustness.csv"))
    robustness = pd.read_csv(out / "pairwise_robustness.csv")
    assert set(robustness["metric"]) == {"attack_success_rate", "robustness_drop", "robustness_drop_unpaired"}
    written = pd.read_csv(out / "pairwise_significance.csv")
    assert list(written.columns) == SIGNIFICANCE_COLUMNS
    assert (written["model_a"] == "transformer_pp").all() and (written["model_b"] == "gla").all()
    metrics = pd.read_csv(out / "metrics.csv")
    glue_acc = metrics[(metrics["model"] == "gla") & (metrics["dataset"] == "glue")]["value"].iloc[0]
    assert written.loc[written["dataset"] == "glue", "acc_b"].iloc[0] == pytest.approx(glue_acc)
    assert not list(out.glob("*.tmp*"))  # written atomically, nothing left behind


# --- robustness quantities between two models: the paired randomisation test ----------------------------

def exact_permutation_p(first, second) -> float:
    """The randomisation test's p-value by enumerating every one of the 2^n swaps (small n only)."""
    import itertools

    observed = first.value() - second.value()
    extreme = total = 0
    for swaps in itertools.product([False, True], repeat=first.samples[0].shape[0]):
        swap = np.array(swaps)[:, None]
        a = np.where(swap, second.samples[0], first.samples[0]).mean(axis=0)[None]
        b = np.where(swap, first.samples[0], second.samples[0]).mean(axis=0)[None]
        with np.errstate(invalid="ignore"):
            drawn = first.statistic([a])[0] - second.statistic([b])[0]
        extreme += bool(abs(drawn) >= abs(observed) - 1e-12)
        total += 1
    return extreme / total


def test_permutation_p_value_matches_the_exact_enumeration():
    from kernels.evaluation.evaluate import attack_success_statistic, paired_drop_statistic
    from kernels.evaluation.significance import permutation_p_value

    label = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 1])
    # model A: right on every original, wrong on six adversarial versions; model B: right on one of them
    a = pd.DataFrame({"label": label, "pred_orig": label, "pred": np.where(np.arange(10) < 6, 1 - label, label)})
    b = pd.DataFrame({"label": label, "pred_orig": label, "pred": np.where(np.arange(10) < 1, 1 - label, label)})
    for build in (paired_drop_statistic, attack_success_statistic):
        first, second = build(a), build(b)
        exact = exact_permutation_p(first, second)
        drawn = permutation_p_value(first, second, permutations=20_000, seed=1)
        assert drawn == pytest.approx(exact, abs=0.01), build.__name__
        # 5 discordant items (1-5), all favouring B: as extreme only when all swap alike, 2 of 2^5 = the sign test
        assert exact == pytest.approx(2 / 2**5)
    same = paired_drop_statistic(a)
    assert permutation_p_value(same, paired_drop_statistic(a.copy()), permutations=200) == 1.0


def test_robustness_table_from_prediction_files(tmp_path):
    from kernels.evaluation.significance import ROBUSTNESS_COLUMNS, robustness_significance_table

    frames = {}
    for i, model in enumerate(("transformer_pp", "gla", "mmfree")):
        frame = hand_predictions()  # with clean originals; each model gets i more adversarial items wrong
        adversarial = frame.index[frame["dataset"] == "advglue"][:i]
        frame.loc[adversarial, "pred"] = 1 - frame.loc[adversarial, "label"]
        frames[model] = frame
    paths = [write_run(tmp_path, m, "sst2", 0, frame) for m, frame in frames.items()]
    table = robustness_significance_table(paths, permutations=2_000)
    assert list(table.columns) == ROBUSTNESS_COLUMNS
    assert set(table["metric"]) == {"attack_success_rate", "robustness_drop", "robustness_drop_unpaired"}
    assert set(zip(table["model_a"], table["model_b"])) == {("transformer_pp", "gla"), ("transformer_pp", "mmfree"),
                                                            ("gla", "mmfree")}
    assert (table["level"] == "all").all() and (table["split"] == "sst2").all()
    # values are metrics.json's: the paired drop of each model from its own predictions
    for model, frame in (("transformer_pp", frames["transformer_pp"]), ("gla", frames["gla"])):
        expected = compute_metrics(frame, "sst2", bootstrap_samples=0)["advglue"]["sst2"]["robustness_drop"]["all"]
        row = table[(table["model_a"] == model) & (table["metric"] == "robustness_drop")].iloc[0]
        assert row["value_a"] == pytest.approx(expected["value"])
    for _, family in table.groupby(["task", "seed", "split", "level", "metric"]):
        np.testing.assert_allclose(family["p_holm"], holm_adjust(family["p_value"]))
    assert ((table["p_value"] > 0) & (table["p_value"] <= 1)).all() and (table["permutations"] == 2_000).all()
