"""Every config value re-runs exactly the jobs that read it: each value of the tiny config is changed in turn,
and the jobs whose recorded params or input files change (what Snakemake compares to decide a re-run) must be
exactly those of the rules listed for it below. The plans come from Snakemake's own DAG, in one process
(tests/dag_helpers.py), about half a second per value.

``build_report`` reads the whole config (the report shows it), so every value re-runs it; it is listed once
in ``EVERY_VALUE``. Values whose change would add or remove jobs (tasks, seeds, models, recipes) are covered
by the grid tests at the end and in tests/test_workflow_e2e.py.
"""

from __future__ import annotations

import copy
import os
import re

import pytest

from dag_helpers import finished_run, merged_config, plan, signatures, signatures_of_each
from workflow_helpers import REPO, TINY

EVERY_VALUE = {"build_report"}
MODEL_RULES = {"finetune", "evaluate", "profile", "attack", "attack_trigger", "trigger_transfer"}
VICTIM = {"attack", "attack_trigger", "trigger_transfer"}  # the stage's rules that run the model

# The base of the walk: the tiny config with every attack recipe, so that each recipe's own settings show,
# and two of its models (enough to see that a model's value leaves the other alone; fewer jobs to plan).
BASE_OVERLAY = {"attack": {"recipes": ["deepwordbug", "pruthi", "textbugger_char", "hotflip", "pwws",
                                       "universal_trigger"]}}
WALKED_MODELS = ("gla", "mmfree")

# key -> (new value, the rules whose jobs read it). For a models.<name>.* key only that model's jobs may re-run.
# For attack.* keys of one recipe only that recipe's `attack` jobs may re-run (RECIPE_KEYS).
CHANGES = {
    "run_name": ("renamed", set()),
    "demo": (False, set()),
    # bundled data: the hub settings are not read (see HUB_CHANGES for a hub run)
    "data.source": ("hub", {"prepare_glue", "prepare_advglue"}),
    # another folder with the same files (a callable: made in the test's folder)
    "data.bundled_dir": (lambda workdir: bundled_copy(workdir), {"prepare_glue", "prepare_advglue"}),
    "data.hub.glue": ("someone/glue", set()),
    "data.hub.advglue": ("someone/adv_glue", set()),
    "data.hub.advglue_annotations_url": ("https://example.org/dev_ann.json", set()),
    "data.hub.glue_revision": ("abc123", set()),
    "data.hub.advglue_revision": ("abc123", set()),
    "data.hub.advglue_annotations_sha256": ("0" * 64, set()),
    "data.max_train_examples": (150, {"prepare_glue"}),
    "data.max_eval_examples": (60, {"prepare_glue"}),
    "data.subset_seed": (4321, {"prepare_glue"}),
    "tokenizer.vocab_size": (700, {"train_tokenizer", "profile"}),
    "tokenizer.min_frequency": (3, {"train_tokenizer"}),
    "models.gla.label": ("GLA (renamed)", {"tables_eval"}),
    "models.mmfree.family": ("gla", MODEL_RULES),
    # a from-scratch model reads neither a revision nor allow_pickle
    "models.gla.revision": ("abc123", set()),
    "models.gla.allow_pickle": (True, set()),
    # every arch value reaches the same `arch` param of its model's two rules (one model's keys shown)
    "models.gla.arch.hidden_size": (64, {"finetune", "profile"}),
    "models.gla.arch.num_hidden_layers": (2, {"finetune", "profile"}),
    "models.gla.arch.num_heads": (4, {"finetune", "profile"}),
    "models.gla.arch.num_kv_heads": (1, {"finetune", "profile"}),
    "models.gla.arch.expand_k": (1.0, {"finetune", "profile"}),
    "models.gla.arch.expand_v": (2, {"finetune", "profile"}),
    "models.gla.arch.hidden_ratio": (2, {"finetune", "profile"}),
    "models.gla.arch.intermediate_size": (96, {"finetune", "profile"}),
    "models.gla.finetune.lr": (0.002, {"finetune"}),
    "models.gla.finetune.max_length": (32, {"finetune", "evaluate"} | VICTIM),
    "models.gla.finetune.checkpoint_every": (7, set()),
    "models.gla.finetune.resources": ({"mem_mb": 5000}, set()),
    "finetune.epochs": (2, {"finetune"}),
    "finetune.batch_size": (8, {"finetune"}),
    "finetune.lr": (0.002, {"finetune"}),
    "finetune.weight_decay": (0.0, {"finetune"}),
    "finetune.warmup_ratio": (0.2, {"finetune"}),
    "finetune.max_grad_norm": (0.5, {"finetune"}),
    "finetune.max_length": (32, {"finetune", "evaluate"} | VICTIM),
    "finetune.bucket_batches": (10, {"finetune"}),
    # when checkpoints are written never changes the model (and threads and resources are requests)
    "finetune.checkpoint_every": (7, set()),
    "finetune.checkpoint_every_minutes": (5, set()),
    "finetune.threads": (2, set()),
    "finetune.resources": ({"mem_mb": 5000, "runtime": 10, "gpu": 0}, set()),
    # attack.device is set, so the fine-tuning device reaches the evaluation only
    "finetune.device": ("auto", {"finetune", "evaluate"}),
    "finetune.dtype": ("bfloat16", {"finetune", "evaluate"} | VICTIM),
    "finetune.save_dtype": ("float32", {"finetune"}),
    "finetune.gradient_checkpointing": (True, {"finetune"}),
    "finetune.max_tokens_per_step": (128, {"finetune"}),
    "evaluate.batch_size": (32, {"evaluate"}),
    "evaluate.bootstrap_samples": (60, {"evaluate"}),
    "evaluate.threads": (2, set()),
    "evaluate.resources": ({"mem_mb": 5000}, set()),
    "attack.examples": (7, VICTIM),
    "attack.example_seed": (1, VICTIM),
    "attack.seed": (1, {"attack", "attack_trigger", "attack_summary"}),
    "attack.query_budget": (70, {"attack"}),
    "attack.beam_width": (3, {"attack"}),
    "attack.max_edit_distance": (20, {"attack"}),
    "attack.pruthi_max_words": (2, {"attack"}),
    "attack.hotflip_max_words": (3, {"attack"}),
    "attack.hotflip_min_cos_sim": (0.3, {"attack"}),
    "attack.hotflip_candidates": (5, {"attack"}),
    # the synonyms: the word recipes' attack jobs and the trigger search (whose words it checks)
    "attack.wordnet.source": ("nltk", {"attack", "attack_trigger"}),
    # a bundled run reads no WordNet directory
    "attack.wordnet.dir": ("/usr/share/wordnet", set()),
    "attack.trigger.length": (3, {"attack_trigger"}),
    "attack.trigger.steps": (2, {"attack_trigger"}),
    "attack.trigger.candidates": (6, {"attack_trigger"}),
    "attack.trigger.beam": (2, {"attack_trigger"}),
    "attack.trigger.search_examples": (9, {"attack_trigger"}),
    "attack.batch_size": (32, VICTIM),
    # the summary's bootstrap only: no search re-runs
    "attack.bootstrap_samples": (60, {"attack_summary"}),
    "attack.threads": (2, set()),
    "attack.device": ("auto", VICTIM),
    "attack.resources": ({"mem_mb": 5000}, set()),
    "kernels.force_torch": (True, MODEL_RULES),
    "kernels.require_fla": (True, MODEL_RULES),
    "profile.modes": (["prefill"], {"profile"}),
    "profile.seq_lens": ([16], {"profile"}),
    "profile.batch_sizes": ([2], {"profile"}),
    "profile.decode_tokens": (5, {"profile"}),
    "profile.warmup": (2, {"profile"}),
    "profile.min_repeats": (2, {"profile"}),
    "profile.max_repeats": (9, {"profile"}),
    "profile.time_budget_s": (0.1, {"profile"}),
    "profile.memory_limit_mb": (100, {"profile"}),
    "profile.seed": (3, {"profile"}),
    "profile.threads": (2, {"profile"}),
    "profile.device": ("auto", {"profile"}),
    "profile.dtype": ("bfloat16", {"profile"}),
    "profile.flush_denormal": (False, {"profile"}),
    # the train points' own AdamW settings; the fine-tuning ones (finetune.lr, ...) re-run no profile job
    "profile.lr": (0.002, {"profile"}),
    "profile.weight_decay": (0.0, {"profile"}),
    "profile.max_grad_norm": (0.5, {"profile"}),
    "profile.resources": ({"mem_mb": 5000}, set()),
    "report.title": ("Another title", set()),
    "report.width": (500, set()),
    "report.height": (300, set()),
    # the crossover baseline: only the report reads it
    "report.baseline": ("mmfree", set()),
}
# attack settings of some recipes: only those recipes' attack jobs read them
RECIPE_KEYS = {"attack.beam_width": {"hotflip"}, "attack.hotflip_max_words": {"hotflip"},
               "attack.hotflip_min_cos_sim": {"hotflip"}, "attack.hotflip_candidates": {"hotflip"},
               "attack.max_edit_distance": {"deepwordbug"}, "attack.pruthi_max_words": {"pruthi"},
               "attack.wordnet.source": {"hotflip", "pwws"}}
# A hub run reads the hub settings, each in the data rule it concerns.
HUB_CHANGES = {
    "data.hub.glue": ("someone/glue", {"prepare_glue"}),
    "data.hub.glue_revision": ("abc123", {"prepare_glue"}),
    "data.hub.advglue": ("someone/adv_glue", {"prepare_advglue"}),
    "data.hub.advglue_annotations_url": ("https://example.org/dev_ann.json", {"prepare_advglue"}),
    "data.hub.advglue_revision": ("abc123", {"prepare_advglue"}),
    "data.hub.advglue_annotations_sha256": ("0" * 64, {"prepare_advglue"}),
    "data.bundled_dir": ("elsewhere", set()),
}


def with_value(config: dict, key: str, value) -> dict:
    changed = copy.deepcopy(config)
    *parents, last = key.split(".")
    node = changed
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return changed


def bundled_copy(workdir) -> str:
    """resources/data again, as links in another folder: same files, other paths."""
    target = workdir / "bundled_copy"
    if not target.exists():
        for source in (REPO / "resources" / "data").rglob("*"):
            if source.is_file():
                link = target / source.relative_to(REPO / "resources" / "data")
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source)
    return str(target)


def changed_jobs(before: dict, after: dict) -> set[tuple]:
    return {job for job in set(before) | set(after) if before.get(job) != after.get(job)}


def leaves(config: dict, prefix: str = ""):
    for key, value in config.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


GRID = {"tasks", "seeds", "selected_models", "attack.recipes", "attack.tasks"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("params")


@pytest.fixture(scope="module")
def base():
    config = merged_config(TINY, BASE_OVERLAY)
    config["models"] = {name: config["models"][name] for name in WALKED_MODELS}
    return config


def schema_leaves(node: dict, defs: dict, prefix: str = ""):
    """Every value path config/schema.yaml allows, ``models.<name>`` written as ``models.gla``."""
    if "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[1]]
    for part in node.get("allOf", []):
        yield from schema_leaves(part, defs, prefix)
    properties = dict(node.get("properties") or {})
    if prefix == "models." and isinstance(node.get("additionalProperties"), dict):
        yield from schema_leaves(node["additionalProperties"], defs, "models.gla.")
    for key, child in properties.items():
        path = f"{prefix}{key}"
        target = defs[child["$ref"].rsplit("/", 1)[1]] if "$ref" in child else child
        if path in GRID or path in CHANGES or not (target.get("properties") or target.get("allOf")
                                                    or path == "models"):
            yield path
        else:
            yield from schema_leaves(child, defs, path + ".")


# covered elsewhere: a pretrained checkpoint needs one on disk (tests/test_pretrained_sources.py), and
# models.<name>.finetune holds the finetune settings (its keys are walked as finetune.* plus the examples)
# models.<name>.arch.model_type: only generic families (hf, fla) take it, test_generic_model_type_reaches_its_model_jobs
ELSEWHERE = {"models.gla.pretrained", "models.gla.arch.model_type"}


def test_every_value_of_the_config_has_its_readers_listed():
    """Each value the schema allows has its line in CHANGES (which rules read it): a new config key cannot
    slip in without saying which jobs it re-runs."""
    import yaml

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    per_model_finetune = {f"models.gla.finetune.{key}" for key in
                          schema["$defs"]["finetune_settings"]["properties"]}
    listed = {re.sub(r"^models\.\w+\.", "models.gla.", key) for key in CHANGES} | GRID | ELSEWHERE
    missing = [path for path in schema_leaves(schema, schema["$defs"])
               if path not in listed and path not in per_model_finetune]
    assert not missing, missing


@pytest.mark.slow  # about a hundred plans: ~30 s on 2 free cores (two worker processes), in the default run
def test_each_value_reruns_exactly_the_jobs_that_read_it(workdir, base):
    keys = list(CHANGES)
    values = [CHANGES[key][0](workdir) if callable(CHANGES[key][0]) else CHANGES[key][0] for key in keys]
    before, *after = signatures_of_each(workdir, [base] + [with_value(base, k, v) for k, v in zip(keys, values)])
    wrong = {}
    for key, changed in zip(keys, after):
        readers = CHANGES[key][1]
        jobs = changed_jobs(before, changed)
        rules = {rule for rule, _ in jobs} - EVERY_VALUE
        problems = []
        if rules != readers:
            problems.append(f"rules {sorted(rules)} instead of {sorted(readers)}")
        if key.startswith("models."):
            model = key.split(".")[1]
            others = sorted({dict(w).get("model") for rule, w in jobs} - {model, None})
            if others:
                problems.append(f"jobs of other models too: {others}")
        if key in RECIPE_KEYS:
            recipes = sorted({dict(w).get("recipe") for rule, w in jobs if rule == "attack"})
            if recipes != sorted(RECIPE_KEYS[key]):
                problems.append(f"attack jobs of recipes {recipes}, not only {sorted(RECIPE_KEYS[key])}")
        if not {rule for rule, _ in jobs} >= EVERY_VALUE:
            problems.append("the report does not show the change")
        if problems:
            wrong[key] = problems
    assert not wrong, wrong


def test_hub_settings_rerun_their_data_rule_only_in_a_hub_run(workdir, base):
    hub = with_value(base, "data.source", "hub")
    keys = list(HUB_CHANGES)
    before, *after = signatures_of_each(workdir, [hub] + [with_value(hub, k, HUB_CHANGES[k][0]) for k in keys])
    wrong = {}
    for key, changed in zip(keys, after):
        rules = {rule for rule, _ in changed_jobs(before, changed)}
        if rules - EVERY_VALUE != HUB_CHANGES[key][1]:
            wrong[key] = sorted(rules)
    assert not wrong, wrong


def test_model_and_task_order_rerun_only_the_report(workdir, base):
    """The report lists models in the config's order; tables, the transfer matrix and the tokenizer do not
    depend on it (a --configfile that changes one model's label moves that model first when merged)."""
    before = signatures(workdir, base)
    reordered = copy.deepcopy(base)
    reordered["models"] = dict(reversed(list(base["models"].items())))
    reordered["tasks"] = list(reversed(base["tasks"]))
    assert {rule for rule, _ in changed_jobs(before, signatures(workdir, reordered))} == {"build_report"}
    selected = with_value(base, "selected_models", list(reversed(WALKED_MODELS)))
    assert {rule for rule, _ in changed_jobs(before, signatures(workdir, selected))} == {"build_report"}


def test_a_planned_rerun_follows_the_readers(tmp_path, base):
    """Snakemake's own plan on a finished run (touched outputs with recorded metadata): the bootstrap of the
    attack summary re-runs the summaries and what reads them, not one search; a fine-tuning lr re-runs no
    profile job; checkpoint timing re-runs nothing but the report."""
    config = merged_config(TINY)
    finished_run(tmp_path, config)
    assert plan(tmp_path, config) == []
    planned = {job.rule for job in plan(tmp_path, with_value(config, "attack.bootstrap_samples", 60))}
    assert planned == {"attack_summary", "build_report", "report"}, planned
    planned = {job.rule for job in plan(tmp_path, with_value(config, "finetune.lr", 0.002))}
    assert "profile" not in planned and "finetune" in planned
    planned = {job.rule for job in plan(tmp_path, with_value(config, "finetune.checkpoint_every", 7))}
    assert planned == {"build_report", "report"}, planned
    # every file of the Outputs contract is a target: a deleted one is rebuilt, with what reads it
    for deleted, rules in (("results/tables/metrics.csv", {"tables_eval"}),
                           ("results/eval/gla/rte/seed0/predictions.parquet", {"evaluate"}),
                           ("results/models/gla/rte/seed0/train_log.csv", {"finetune"}),
                           ("results/attacks/gla/sst2/seed0/universal_trigger.json", {"attack_trigger"}),
                           ("results/data/glue/rte/validation.parquet", {"prepare_glue"})):
        path = tmp_path / deleted
        times = path.stat()
        path.unlink()
        direct = {job.rule for job in plan(tmp_path, config) if "Missing output files" in job.reasons}
        assert direct == rules, (deleted, direct)
        path.touch()
        os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))  # as it was: the next file on its own


def test_the_default_target_names_every_contract_file(workdir, base):
    from dag_helpers import all_outputs

    outputs = {str(p.relative_to(workdir)) for p in all_outputs(workdir, base)}
    for name in ("results/tables/metrics.csv", "results/tables/efficiency_slopes.csv",
                 "results/eval/gla/rte/seed0/predictions.parquet", "results/eval/gla/rte/seed0/metrics.json",
                 "results/models/gla/rte/seed0/train_log.csv", "results/models/gla/rte/seed0/finetune_info.json",
                 "results/attacks/gla/sst2/seed0/universal_trigger.json",
                 "results/attacks/gla/sst2/seed0/hotflip.search.json", "results/tokenizer/tokenizer_config.json",
                 "results/data/glue/rte/validation.parquet", "results/data/advglue/mnli-mm.parquet"):
        assert name in outputs, name


def test_generic_model_type_reaches_its_model_jobs(workdir, base):
    """A from-scratch generic model's architecture (its model_type too) re-runs that model's fine-tune and
    profile jobs, and what reads the fine-tuned model, nothing of the other models."""
    generic = copy.deepcopy(base)
    generic["models"]["ssm"] = {"family": "hf", "label": "SSM",
                                "arch": {"model_type": "mamba2", "hidden_size": 32, "num_hidden_layers": 1}}
    before, after = signatures_of_each(workdir, [generic, with_value(generic, "models.ssm.arch.model_type", "mamba")])
    jobs = changed_jobs(before, after)
    assert {rule for rule, _ in jobs} - EVERY_VALUE == {"finetune", "profile"}
    assert {dict(w).get("model") for rule, w in jobs} - {None} == {"ssm"}
