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


def test_selected_models_must_name_configured_models(tmp_path):
    overlay = _write(tmp_path, {"selected_models": ["gla", "mamba"]})
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
    assert proc.returncode != 0
    assert "config key 'selected_models' names 'mamba', which is not a key of 'models'" in proc.stdout + proc.stderr
    jobs = planned_jobs(tmp_path, "report", "--configfile", str(_write(tmp_path, {"selected_models": ["gla"]})))
    assert jobs["finetune"] == 2 and jobs["profile"] == 1  # one model, two tasks


def test_arch_typos_and_bad_head_counts_fail_before_any_job(tmp_path):
    """Checked against each family's config class at start (kernels/models/arch_rules.py), for all three."""
    cases = {
        "transformer_pp": ({"num_layers": 1}, "models.transformer_pp.arch.num_layers: unknown field of family "
                                              "'transformer_pp'; known fields: "),
        "gla": ({"hidden_sise": 32}, "models.gla.arch.hidden_sise: unknown field of family 'gla'"),
        "mmfree": ({"hidden_size": 30, "num_heads": 4}, "models.mmfree.arch: HGRNBitConfig: hidden_size 30"),
    }
    for family, (arch, message) in cases.items():
        overlay = _write(tmp_path, {"models": {family: {"arch": arch}}})
        proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (family, proc.stderr[-1500:])
    overlay = _write(tmp_path, {"models": {"gla": {"arch": {"hidden_size": 30, "num_heads": 4}}}})
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
    assert "GLAConfig: hidden_size * expand_k = 15.0 must be an integer divisible by num_heads 4" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()  # nothing ran


def test_settings_compared_with_each_other_fail_before_any_job(tmp_path):
    """What a JSON schema cannot express (one key against another) is checked at start too."""
    overlay = _write(tmp_path, {"models": {"gla": {"finetune": {"max_tokens_per_step": 32}}},
                                "profile": {"min_repeats": 3, "max_repeats": 2}})
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "models.gla: finetune.max_tokens_per_step 32 is below finetune.max_length 128" in out
    assert "profile.max_repeats 2 is below profile.min_repeats 3" in out
