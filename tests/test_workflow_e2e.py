"""End to end: the real workflow on a tiny config (small subsets, one seed, tiny models), then every
output of the file contract (README "Outputs") exists and parses, and a second run has nothing to do."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from safetensors.torch import load_file

from kernels.models import config_class
from kernels.tokenization import load_tokenizer

from workflow_helpers import TINY, planned_jobs, run_snakemake

pytestmark = pytest.mark.slow

MODELS = ("transformer_pp", "gla", "mmfree")
TASKS = ("sst2", "rte")
ADVGLUE_SETS = ("sst2", "qqp", "mnli", "mnli-mm", "qnli", "rte")
ADVGLUE_SIZES = {"sst2": 148, "qqp": 78, "mnli": 121, "mnli-mm": 162, "qnli": 148, "rte": 81}


# Every job shows each deprecation warning it meets (Python hides most of them by default), so that the
# run's logs tell whether the project's own code uses an API that a coming release removes.
SHOW_DEPRECATIONS = "always::DeprecationWarning,always::FutureWarning"
OWN_CODE = re.compile(r"/(kernels|workflow_scripts)/[\w/]+\.py:\d+: (DeprecationWarning|FutureWarning)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "PYTHONWARNINGS": SHOW_DEPRECATIONS}
    proc = run_snakemake(workdir, "report", "--cores", "2", "--configfile", str(TINY), timeout=1200, env=env)
    (workdir / "console.log").write_text(proc.stdout + proc.stderr)
    return workdir


@pytest.fixture()
def own_run_dir(run_dir, tmp_path) -> Path:
    """A copy of the finished run for a test that changes it (the workflow is relocatable, so the copy
    plans nothing): tests do not depend on their order."""
    return Path(shutil.copytree(run_dir, tmp_path / "run", symlinks=True))


def test_no_deprecated_api_in_the_projects_own_code(run_dir):
    texts = [(run_dir / "console.log").read_text()] + [p.read_text() for p in (run_dir / "logs").rglob("*.log")]
    own = sorted({m.group(0) for text in texts for m in OWN_CODE.finditer(text)})
    assert not own, own
    # transformers 5 logs (does not warn) when the old cache names are used
    assert not any("`past_key_values`/`cache_params` are deprecated" in text for text in texts)


def test_glue_data_schema(run_dir):
    for task in TASKS:
        for split in ("train", "validation"):
            frame = pd.read_parquet(run_dir / f"results/data/glue/{task}/{split}.parquet")
            assert list(frame.columns)[:4] == ["idx", "text_a", "text_b", "label"]
            assert len(frame) > 0 and frame["idx"].is_unique
            assert set(frame["label"]) <= {0, 1}
    assert pd.read_parquet(run_dir / "results/data/glue/sst2/train.parquet")["text_b"].isna().all()
    assert pd.read_parquet(run_dir / "results/data/glue/rte/train.parquet")["text_b"].notna().all()


def test_advglue_data_schema(run_dir):
    for advset in ADVGLUE_SETS:
        frame = pd.read_parquet(run_dir / f"results/data/advglue/{advset}.parquet")
        assert len(frame) == ADVGLUE_SIZES[advset]
        for column in ("idx", "text_a", "text_b", "label", "level", "method", "original_text_a", "original_text_b"):
            assert column in frame.columns
        assert set(frame["level"]) <= {"word", "sentence", "human"}
        human = frame["level"] == "human"
        assert frame.loc[human, ["original_text_a", "original_text_b"]].isna().all().all()
        perturbed = frame.loc[~human, ["original_text_a", "original_text_b"]].notna().sum(axis=1)
        assert (perturbed == 1).all()


def test_models_are_saved_as_safetensors_with_logs(run_dir):
    for model in MODELS:
        for task in TASKS:
            mdir = run_dir / f"results/models/{model}/{task}/seed0"
            config = config_class(model).from_pretrained(mdir)  # model names equal family names here
            tokenizer = load_tokenizer(str(mdir))
            assert config.num_labels == 2
            assert (config.pad_token_id, config.eos_token_id) == (tokenizer.pad_token_id, tokenizer.eos_token_id)
            weights = load_file(str(mdir / "model.safetensors"))
            assert any(name.startswith("score") for name in weights)
            assert (mdir / "tokenizer.json").exists()
            log = pd.read_csv(mdir / "train_log.csv")
            assert list(log.columns[:5]) == ["step", "loss", "lr", "tokens_per_s", "elapsed_s"]
            assert len(log) >= 1 and (log["tokens_per_s"] > 0).all()
    # every checkpoint was removed once its model was written, with the folders it left empty
    assert not (run_dir / "results/checkpoints").exists()


def test_predictions_and_metrics_agree(run_dir):
    for model in MODELS:
        for task in TASKS:
            edir = run_dir / f"results/eval/{model}/{task}/seed0"
            preds = pd.read_parquet(edir / "predictions.parquet")
            for column in ("dataset", "split", "idx", "label", "pred", "prob"):
                assert column in preds.columns
            assert set(preds["dataset"]) == {"glue", "advglue", "advglue_original"}
            assert preds["prob"].between(0, 1).all()
            metrics = json.loads((edir / "metrics.json").read_text())
            glue = preds[preds["dataset"] == "glue"]
            recomputed = float((glue["label"] == glue["pred"]).mean())
            assert metrics["glue"]["validation"]["accuracy"]["value"] == pytest.approx(recomputed, abs=1e-12)
            adv_rows = preds[(preds["dataset"] == "advglue") & (preds["split"] == task)]
            adv_accuracy = float((adv_rows["label"] == adv_rows["pred"]).mean())
            assert metrics["advglue"][task]["metrics"]["accuracy"]["value"] == pytest.approx(adv_accuracy, abs=1e-12)
            adv = preds[(preds["dataset"] == "advglue") & (preds["split"] == task)]
            assert len(adv) == ADVGLUE_SIZES[task]


def test_official_advglue_files(run_dir):
    for model in MODELS:
        preds = json.loads((run_dir / f"results/eval/{model}/advglue_predictions_seed0.json").read_text())
        for task in TASKS:
            assert len(preds[task]) == ADVGLUE_SIZES[task]
        score = json.loads((run_dir / f"results/eval/{model}/advglue_score_seed0.json").read_text())
        assert 0.0 <= score["score"] <= 1.0
        assert set(score["per_task"]) == set(TASKS)
        # Recompute the accuracy of one set from the official-format predictions and the dev labels.
        dev = pd.read_parquet(run_dir / "results/data/advglue/rte.parquet")
        acc = float((dev["label"].to_numpy() == pd.Series(preds["rte"]).to_numpy()).mean())
        assert abs(score["per_task"]["rte"] - acc) < 1e-9


def test_efficiency_csv_schema(run_dir):
    columns = ["model", "device", "mode", "batch_size", "seq_len", "median_ms", "p10_ms", "p90_ms",
               "tokens_per_s", "peak_mem_mb", "params"]
    for model in MODELS:
        frame = pd.read_csv(run_dir / f"results/efficiency/{model}.csv")
        assert list(frame.columns[: len(columns)]) == columns
        assert set(frame["mode"]) == {"train", "prefill", "decode"}
        assert set(frame["seq_len"]) == {16, 32}
        ok = frame[frame.get("status", "ok") == "ok"] if "status" in frame else frame
        assert (ok["median_ms"] > 0).all() and (ok["params"] > 0).all()


def test_tables_and_report(run_dir):
    tables = run_dir / "results/tables"
    metrics = pd.read_csv(tables / "metrics.csv")
    assert set(metrics["model"]) == set(MODELS) and set(metrics["task"]) == set(TASKS)
    for name in ("advglue_scores.csv", "finetune_throughput.csv", "efficiency.csv"):
        assert len(pd.read_csv(tables / name)) > 0
    html = (run_dir / "results/report/index.html").read_text()
    assert "<script" in html and "vega" in html.lower()
    assert "cdn.jsdelivr" not in html and 'src="http' not in html
    figures = list((run_dir / "results/report/figures").iterdir())
    pngs = [f for f in figures if f.suffix == ".png"]
    svgs = [f for f in figures if f.suffix == ".svg"]
    assert pngs and len(pngs) == len(svgs)
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in pngs)
    assert all("<svg" in f.read_text()[:500] for f in svgs)


def test_every_job_writes_its_log(run_dir):
    expected = ["logs/prepare_advglue.log", "logs/train_tokenizer.log", "logs/tables_eval.log",
                "logs/tables_efficiency.log", "logs/report.log"]
    for model in MODELS:
        expected += [f"logs/profile/{model}.log", f"logs/advglue_score/{model}/seed0.log"]
        expected += [f"logs/{stage}/{model}/{task}/seed0.log" for stage in ("finetune", "evaluate") for task in TASKS]
    missing = [path for path in expected if not (run_dir / path).is_file()]
    assert not missing, missing


def test_second_run_has_nothing_to_do(run_dir):
    assert planned_jobs(run_dir, "report", "--configfile", str(TINY)) == {}


def test_snakemakes_own_report_includes_charts_and_tables(run_dir):
    import zipfile

    run_snakemake(run_dir, "report", "--configfile", str(TINY), "--report", "snakemake_report.zip")
    with zipfile.ZipFile(run_dir / "snakemake_report.zip") as archive:
        names = archive.namelist()
    for wanted in ("index.html", "metrics.csv", "efficiency.csv", "glue_vs_advglue.svg", "tradeoff.png"):
        assert any(name.endswith(wanted) for name in names), wanted


# Partial re-runs: after a completed run, each kind of config change plans exactly the jobs it affects.

def _overlay(tmp_path: Path, text: str) -> str:
    path = tmp_path / "change.yaml"
    path.write_text(text)
    return str(path)


def test_one_models_hyperparameter_reruns_only_that_model(run_dir, tmp_path):
    change = _overlay(tmp_path, "models:\n  gla:\n    finetune: {lr: 0.002}\n")
    jobs = planned_jobs(run_dir, "report", "--configfile", str(TINY), change)
    assert jobs.pop("finetune") == 2 and jobs.pop("evaluate") == 2 and jobs.pop("advglue_score") == 1
    # gla's attacks (one recipe and the trigger search on SST-2); the transfer matrix applies its trigger
    assert jobs.pop("attack") == 1 and jobs.pop("attack_trigger") == 1 and jobs.pop("trigger_transfer") == 1
    assert jobs.pop("attack_summary") == 1  # the summary of gla's new search
    assert set(jobs) <= {"tables_eval", "build_report", "report"}


def test_adding_a_seed_adds_only_its_jobs(run_dir, tmp_path):
    change = _overlay(tmp_path, "seeds: [0, 1]\n")
    jobs = planned_jobs(run_dir, "report", "--configfile", str(TINY), change)
    assert jobs.pop("finetune") == 6 and jobs.pop("evaluate") == 6 and jobs.pop("advglue_score") == 3
    assert jobs.pop("attack") == 3 and jobs.pop("attack_trigger") == 3 and jobs.pop("trigger_transfer") == 1
    assert jobs.pop("attack_summary") == 3
    assert set(jobs) <= {"tables_eval", "build_report", "report"}


def test_adding_a_model_adds_only_its_jobs(run_dir, tmp_path):
    change = _overlay(
        tmp_path,
        "models:\n  gla_wide:\n    family: gla\n    label: GLA wide\n"
        "    arch: {hidden_size: 48, num_hidden_layers: 1, num_heads: 2}\n",
    )
    jobs = planned_jobs(run_dir, "report", "--configfile", str(TINY), change)
    assert jobs.pop("finetune") == 2 and jobs.pop("evaluate") == 2
    assert jobs.pop("advglue_score") == 1 and jobs.pop("profile") == 1
    assert jobs.pop("attack") == 1 and jobs.pop("attack_trigger") == 1 and jobs.pop("trigger_transfer") == 1
    assert jobs.pop("attack_summary") == 1
    assert set(jobs) <= {"tables_eval", "tables_efficiency", "build_report", "report"}


def test_report_styling_reruns_only_the_report(run_dir, tmp_path):
    change = _overlay(tmp_path, "report: {width: 500}\n")
    jobs = planned_jobs(run_dir, "report", "--configfile", str(TINY), change)
    assert set(jobs) <= {"build_report", "report"} and jobs["build_report"] == 1


def test_same_config_and_seed_give_identical_metrics(own_run_dir):
    # Re-executes one fine-tune and its evaluation in a copy of the finished run.
    run_dir = own_run_dir
    metrics = run_dir / "results/eval/gla/rte/seed0/metrics.json"
    predictions = run_dir / "results/eval/gla/rte/seed0/predictions.parquet"
    before_metrics, before_predictions = metrics.read_text(), pd.read_parquet(predictions)
    run_snakemake(run_dir, str(metrics.relative_to(run_dir)), "--cores", "2", "--configfile", str(TINY),
                  "--forcerun", "finetune", "evaluate", "--allowed-rules", "finetune", "evaluate")
    assert metrics.read_text() == before_metrics
    pd.testing.assert_frame_equal(pd.read_parquet(predictions), before_predictions)
