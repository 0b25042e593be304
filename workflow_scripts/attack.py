"""Fresh adversarial attacks (rules ``attack``, ``attack_summary``, ``attack_trigger`` and
``trigger_transfer``): parse the Snakemake object and call kernels.attacks.job (and .summary_job); the
output schemas are in README ("Outputs")."""

from pathlib import Path

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.io import log_to
from kernels.ops.backend import set_force_torch


def _prepare(params) -> None:
    from kernels.ops.backend import require_fla as check_fla
    from kernels.training.loop import resolve_device

    if params.get("force_torch", False):
        set_force_torch(True)  # config kernels.force_torch: never use fla's triton kernels
    if params.get("require_fla", False):
        devices = {a["device"] for a in ([params.attack] if "family" in params.attack else params.attack.values())}
        for device in devices:
            check_fla(resolve_device(device))


def _model_dir(files) -> str:
    return str(Path(list(files)[0]).parent)


def run_attack_rule(sm) -> None:
    from kernels.attacks.job import attack_job
    from kernels.attacks.recipes import AttackSettings
    from kernels.attacks.resources import WordNetSettings

    a = sm.params.attack
    settings = AttackSettings(**{k: a[k] for k in AttackSettings.__dataclass_fields__ if k in a})
    # the search only: its record is the summary without CIs, which rule attack_summary adds
    wordnet = WordNetSettings(**sm.params.wordnet)  # attack.wordnet (rules/common.smk: attack_wordnet)
    attack_job(model_dir=_model_dir(sm.input.model), family=a["family"], split_path=sm.input.split,
               recipe=sm.wildcards.recipe, settings=settings, examples=a["examples"], example_seed=a["example_seed"],
               seed=a["seed"], jsonl_path=sm.output.jsonl, summary_path=sm.output.search,
               max_length=a["max_length"], batch_size=a["batch_size"], device=a["device"], dtype=a["dtype"],
               threads=sm.threads, bootstrap_samples=0, resources_dir=Path(sm.input.tables[0]).parent,
               model_seed=int(sm.wildcards.seed), wordnet=wordnet)


def run_summary_rule(sm) -> None:
    from kernels.attacks.summary_job import summary_job

    a = sm.params.attack
    summary_job(jsonl_path=sm.input.jsonl, search_path=sm.input.search, summary_path=sm.output[0],
                bootstrap_samples=a["bootstrap_samples"], bootstrap_seed=a["seed"],
                settings_read=list(sm.params.settings_read))


def run_trigger_rule(sm) -> None:
    from kernels.attacks.job import trigger_job
    from kernels.attacks.resources import WordNetSettings

    a = sm.params.attack
    t = a.get("trigger") or {}
    trigger_job(model_dir=_model_dir(sm.input.model), family=a["family"], task=sm.wildcards.task,
                split_path=sm.input.split, examples=a["examples"], search_examples=t.get("search_examples", 64),
                example_seed=a["example_seed"], seed=a["seed"], out_path=sm.output[0], max_length=a["max_length"],
                length=t.get("length", 3), steps=t.get("steps", 3), candidates=t.get("candidates", 40),
                beam=t.get("beam", 1), batch_size=a["batch_size"], device=a["device"], dtype=a["dtype"],
                threads=sm.threads, model_seed=int(sm.wildcards.seed), resources_dir=Path(sm.input.tables[0]).parent,
                wordnet=WordNetSettings(**sm.params.wordnet))


def run_transfer_rule(sm) -> None:
    from kernels.attacks.job import transfer_job

    models = list(sm.params.models)
    settings = sm.params.attack
    first = settings[models[0]]
    triggers = {m: path for m, path in zip(models, sm.input.triggers)}
    model_files = list(sm.input.models)
    victims = {m: (_model_dir(model_files[3 * i:3 * i + 3]), settings[m]["family"]) for i, m in enumerate(models)}
    transfer_job(triggers=triggers, victims=victims, split_path=sm.input.split, examples=first["examples"],
                 example_seed=first["example_seed"], out_path=sm.output[0], max_length=first["max_length"],
                 batch_size=first["batch_size"], device=first["device"], dtype=first["dtype"], threads=sm.threads,
                 per_victim={m: {k: settings[m][k] for k in ("max_length", "device", "dtype")} for m in models})


RULES = {"attack": run_attack_rule, "attack_summary": run_summary_rule, "attack_trigger": run_trigger_rule,
         "trigger_transfer": run_transfer_rule}
MODEL_RULES = ("attack", "attack_trigger", "trigger_transfer")  # the ones that run a model

if "snakemake" in globals():
    sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
    with log_to(sm.log[0] if len(sm.log) else None, outputs=sm.output):
        if sm.rule in MODEL_RULES:
            _prepare(sm.params)
        RULES[sm.rule](sm)
