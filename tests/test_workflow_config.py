"""The workflow validates its config at start and plans the right DAG (real Snakemake dry runs)."""

from pathlib import Path

import yaml

from workflow_helpers import REPO, TINY, planned_jobs, run_snakemake


def _write(tmp_path: Path, overlay: dict) -> Path:
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return path


def test_default_config_plans_every_stage(tmp_path):
    jobs = planned_jobs(tmp_path, "report")
    models, tasks, seeds = 3, 2, 1
    assert jobs["prepare_glue"] == tasks
    assert jobs["prepare_advglue"] == 1
    assert jobs["train_tokenizer"] == 1
    assert jobs["finetune"] == models * tasks * seeds
    assert jobs["evaluate"] == models * tasks * seeds
    assert jobs["advglue_score"] == models * seeds
    assert jobs["profile"] == models
    assert jobs["build_report"] == 1


def test_paper_config_plans_full_dag(tmp_path):
    jobs = planned_jobs(tmp_path, "report", "--configfile", str(REPO / "config" / "paper.yaml"))
    models, tasks, seeds = 3, 5, 3
    assert jobs["prepare_glue"] == 4 and jobs["prepare_glue_mnli"] == 1
    assert jobs["finetune"] == models * tasks * seeds
    assert jobs["evaluate"] == models * tasks * seeds
    assert jobs["advglue_score"] == models * seeds
    # Pretrained models bring their own tokenizer: nothing to train.
    assert "train_tokenizer" not in jobs


def test_wrong_type_is_a_schema_error_naming_the_key(tmp_path):
    overlay = _write(tmp_path, {"finetune": {"lr": "fast"}})
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "'fast' is not of type 'number'" in out
    assert "['finetune']['lr']" in out


def test_unknown_family_is_a_schema_error(tmp_path):
    overlay = _write(tmp_path, {"models": {"gla": {"family": "mamba"}}})
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "'mamba' is not one of" in out and "['models']['gla']['family']" in out


def test_empty_seed_list_is_rejected(tmp_path):
    overlay = _write(tmp_path, {"seeds": []})
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "['seeds']" in out


def test_unbundled_task_offline_is_a_clear_error(tmp_path):
    overlay = _write(tmp_path, {"tasks": ["sst2", "qqp"]})
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key 'tasks'" in out and "qqp" in out


def test_selected_models_restricts_the_grid(tmp_path):
    overlay = _write(tmp_path, {"selected_models": ["gla"]})
    jobs = planned_jobs(tmp_path, "report", "--configfile", str(TINY), str(overlay))
    assert jobs["finetune"] == 2 and jobs["profile"] == 1


def test_unknown_task_is_a_schema_error(tmp_path):
    overlay = _write(tmp_path, {"tasks": ["sst2", "cola"]})
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "'cola' is not one of" in out and "['tasks'][1]" in out


def test_unknown_key_is_rejected(tmp_path):
    overlay = _write(tmp_path, {"finetune": {"learning_rate": 0.1}})
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "learning_rate" in out
