# Helpers shared by every stage file: the configured grid, per-model settings, and the kernels sources
# each job depends on. Everything a job depends on reaches it through `params:` or `input:`, so a
# config change re-runs exactly the jobs it affects.

import glob
import os
import copy
import ast
import importlib.util
import sys

REPO = workflow.basedir


def _load_standalone(relative, name):
    """A kernels module that imports nothing of the package, loaded from its file: importing the
    kernels package would load torch and transformers (it registers the model families), which
    planning the workflow does not need."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(REPO, "kernels", relative)
    )
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = (
        loaded  # dataclasses look their module up while the class is built
    )
    spec.loader.exec_module(loaded)
    return loaded


def _load_standalone_package(relative, name):
    """A torch-free kernels subpackage loaded from its directory as a package of its own (its modules import
    each other relatively), for the same reason as `_load_standalone`."""
    directory = os.path.join(REPO, "kernels", relative)
    spec = importlib.util.spec_from_file_location(
        name,
        os.path.join(directory, "__init__.py"),
        submodule_search_locations=[directory],
    )
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


_tasks = _load_standalone("data/tasks.py", "_workflow_task_table")
# the family registry's plan-time layer: families, their libraries and config keys (kernels/families)
_families = _load_standalone_package("families", "_workflow_families")
TASKS, ADVGLUE_SETS = _tasks.TASKS, _tasks.ADVGLUE_SETS


def report_figure_names():
    """Names of kernels.report.charts.FIGURE_LIST, read from the source: importing kernels would load
    torch and transformers (the package registers the model families) just to plan the workflow.
    """
    with open(
        os.path.join(REPO, "kernels", "report", "charts.py"), encoding="utf-8"
    ) as source:
        tree = ast.parse(source.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "FIGURE_LIST" for t in node.targets
        ):
            return [call.args[0].value for call in node.value.elts]
    raise RuntimeError("kernels/report/charts.py: FIGURE_LIST not found")


# Tasks that the bundled (offline) data can serve: official GLUE train + validation are shipped.
BUNDLED_TASKS = ("sst2", "rte")


def _check_config_semantics():
    """Checks that a JSON schema cannot express; each error names the config key."""
    selected = config.get("selected_models")
    for name in selected or []:
        if name not in config["models"]:
            raise ValueError(
                f"config key 'selected_models' names {name!r}, which is not a key of 'models' "
                f"({', '.join(config['models'])})"
            )
    errors = []
    for name, model in config["models"].items():
        errors += _families.model_errors(
            name, model, selected=not selected or name in selected
        )
        settings = {**config["finetune"], **(model.get("finetune") or {})}
        budget = settings.get("max_tokens_per_step")
        if budget is not None and budget < settings["max_length"]:
            # a schema cannot compare two keys: every example must fit a micro-batch of its own
            errors.append(
                f"models.{name}: finetune.max_tokens_per_step {budget} is below finetune.max_length "
                f"{settings['max_length']} (each example must fit one micro-batch)"
            )
    profile = config["profile"]
    if (
        profile.get("max_repeats") is not None
        and profile["max_repeats"] < profile["min_repeats"]
    ):
        errors.append(
            f"profile.max_repeats {profile['max_repeats']} is below profile.min_repeats {profile['min_repeats']}"
        )
    if errors:
        raise ValueError("invalid settings in the config:\n  " + "\n  ".join(errors))
    if config["data"]["source"] == "bundled":
        missing = [t for t in config["tasks"] if t not in BUNDLED_TASKS]
        if missing:
            raise ValueError(
                f"config key 'tasks' lists {missing}, but data.source is 'bundled' and only "
                f"{list(BUNDLED_TASKS)} have official GLUE train and validation sets in resources/data "
                "(QQP, MNLI and QNLI train are not available offline). Use data.source: hub "
                "(config/paper.yaml) or remove those tasks."
            )


_check_config_semantics()

MODELS = config.get("selected_models") or list(config["models"])
TASK_LIST = list(config["tasks"])
SEEDS = list(config["seeds"])


def model_cfg(model):
    return config["models"][model]


def is_pretrained(model):
    return bool(model_cfg(model).get("pretrained"))


def relocatable(path):
    """``path`` relative to the working directory: inputs and params then stay the same when the
    checkout is copied or moved together with its results, and Snakemake plans no re-run for it.
    """
    return os.path.relpath(path)


def repo_path(path):
    """Config paths are relative to the repository, wherever Snakemake's working directory is."""
    return relocatable(path if os.path.isabs(path) else os.path.join(REPO, path))


def canonical(value):
    """``value`` with every dict's keys sorted, recursively: Snakemake compares params as written, so a
    config with the same values in another key order must give the same params (and plan no re-run).
    """
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


def kernel_sources(*subpackages):
    """The kernels sources a job imports: editing a module that a script imports re-runs the job."""
    files = [
        os.path.join(REPO, "kernels", "__init__.py"),
        os.path.join(REPO, "kernels", "io.py"),
    ]
    for sub in subpackages:
        target = os.path.join(REPO, "kernels", sub)
        if os.path.isdir(target):
            files += glob.glob(os.path.join(target, "**", "*.py"), recursive=True)
        else:
            files.append(f"{target}.py")
    return sorted({relocatable(f) for f in files})


BUNDLED_CHECKSUMS = "SHA256SUMS"


def bundled_files(*relative):
    """Bundled data files a job reads, with the checksum list they are verified against, as inputs:
    editing, truncating or deleting one re-runs (and then fails) exactly the jobs that read it.
    """
    if config["data"]["source"] != "bundled":
        return []
    root = repo_path(config["data"]["bundled_dir"])
    return [os.path.join(root, BUNDLED_CHECKSUMS)] + [
        os.path.join(root, r) for r in relative
    ]


def bundled_dir_of_inputs(wildcards, input):
    """The bundled data directory, as the folder of its SHA256SUMS input (None for hub data)."""
    return os.path.dirname(input.bundled[0]) if input.bundled else None


def bundled_glue_inputs(wildcards):
    return bundled_files(
        *(
            f"glue/{wildcards.task}/{split}.tsv"
            for split in TASKS[wildcards.task].splits
        )
    )


MODEL_CODE = ("models", "ops", "modules", "families")


def finetune_hp(model):
    """Global finetune settings overridden by the model's own `finetune:` block."""
    hp = copy.deepcopy(config["finetune"])
    hp.update(copy.deepcopy(model_cfg(model).get("finetune") or {}))
    hp.pop("resources", None)
    hp.pop("threads", None)
    return canonical(hp)


def finetune_setting(model, key, default=None):
    return (model_cfg(model).get("finetune") or {}).get(
        key, config["finetune"].get(key, default)
    )


def rule_resources(section, model=None):
    """`resources:` of a stage: config[section].resources, overridden per model for finetune."""
    res = dict(config.get(section, {}).get("resources") or {})
    if model is not None and section == "finetune":
        res.update((model_cfg(model).get("finetune") or {}).get("resources") or {})
    return res


def resource_getter(section, key, default):
    def get(wildcards, attempt=1):
        model = getattr(wildcards, "model", None)
        return rule_resources(section, model).get(key, default)

    return get


def glue_split_path(task, split):
    return f"results/data/glue/{task}/{split}.parquet"


def advglue_path(advset):
    return f"results/data/advglue/{advset}.parquet"


def eval_dir(model, task, seed):
    return f"results/eval/{model}/{task}/seed{seed}"


def model_dir(model, task, seed):
    return f"results/models/{model}/{task}/seed{seed}"


def eval_file(model, task, seed, name):
    return f"results/eval/{model}/{task}/seed{seed}/{name}"


def model_file(model, task, seed, name):
    return f"results/models/{model}/{task}/seed{seed}/{name}"


def force_torch():
    """config kernels.force_torch: never use fla's triton kernels, even on CUDA."""
    return bool((config.get("kernels") or {}).get("force_torch", False))


def require_fla():
    """config kernels.require_fla: a job whose fla kernels would not run stops with the import error."""
    return bool((config.get("kernels") or {}).get("require_fla", False))


# Input functions and parameters of the stage rules.


def glue_data_params():
    data = config["data"]
    return dict(
        source=data["source"],
        bundled_dir=bundled_dir_of_inputs,
        hub_dataset=data["hub"]["glue"],
        revision=data["hub"].get("glue_revision"),
        max_train_examples=data["max_train_examples"],
        max_eval_examples=data["max_eval_examples"],
        subset_seed=data["subset_seed"],
    )


def finetune_inputs(wildcards):
    inputs = dict(
        train=glue_split_path(wildcards.task, "train"),
        code=kernel_sources(*MODEL_CODE, "training", "tokenization", "data"),
    )
    if not is_pretrained(wildcards.model):
        inputs["tokenizer"] = "results/tokenizer/tokenizer.json"
    return inputs


def evaluate_inputs(wildcards):
    mdir = model_dir(wildcards.model, wildcards.task, wildcards.seed)
    spec = TASKS[wildcards.task]
    return dict(
        config=f"{mdir}/config.json",
        weights=f"{mdir}/model.safetensors",
        tokenizer=f"{mdir}/tokenizer.json",
        glue=[glue_split_path(wildcards.task, s) for s in spec.eval_splits],
        advglue=[advglue_path(s) for s in spec.advglue_sets],
        code=kernel_sources(
            *MODEL_CODE, "evaluation", "training", "tokenization", "data"
        ),
    )


def profile_vocab_size(model):
    # Pretrained checkpoints carry their own vocabulary; from-scratch models use the workflow tokenizer's.
    return None if is_pretrained(model) else config["tokenizer"]["vocab_size"]


# Attack stage (rules/attack.smk).

ATTACK = config.get("attack") or {}
TRIGGER_RECIPE = "universal_trigger"
ATTACK_RECIPES = [r for r in ATTACK.get("recipes", []) if r != TRIGGER_RECIPE]
ATTACK_TRIGGERS = TRIGGER_RECIPE in ATTACK.get("recipes", [])
# attack.tasks: the tasks attacked (null = every task of the run)
ATTACK_TASKS = [t for t in TASK_LIST if t in (ATTACK.get("tasks") or TASK_LIST)]
ATTACK_KEYS = (
    "examples",
    "example_seed",
    "seed",
    "query_budget",
    "beam_width",
    "max_edit_distance",
    "pruthi_max_words",
    "hotflip_max_words",
    "hotflip_min_cos_sim",
    "hotflip_candidates",
    "trigger",
    "batch_size",
    "bootstrap_samples",
)


def attack_split(task):
    # the first evaluation split (validation; validation_matched for MNLI)
    return glue_split_path(task, TASKS[task].eval_splits[0])


def attack_model_inputs(model, task, seed):
    mdir = model_dir(model, task, seed)
    return [
        f"{mdir}/config.json",
        f"{mdir}/model.safetensors",
        f"{mdir}/tokenizer.json",
    ]


def attack_inputs(wildcards):
    return dict(
        model=attack_model_inputs(wildcards.model, wildcards.task, wildcards.seed),
        split=attack_split(wildcards.task),
        tables=[
            repo_path(f"resources/attacks/{name}")
            for name in ("stopwords_en.txt", "homoglyphs.tsv", "qwerty_neighbours.tsv")
        ],
        code=kernel_sources(
            *MODEL_CODE, "attacks", "evaluation", "training", "tokenization"
        ),
    )


def attack_params(model):
    """Everything an attack job depends on besides its files (sorted keys: see `canonical`)."""
    hp = finetune_hp(model)
    return canonical(
        dict(
            {k: ATTACK[k] for k in ATTACK_KEYS if k in ATTACK},
            family=model_cfg(model)["family"],
            max_length=hp["max_length"],
            dtype=hp["dtype"],
            device=ATTACK.get("device", hp["device"]),
        )
    )


def attack_outputs():
    """Every file of the attack stage: what the report reads."""
    out = expand(
        "results/attacks/{model}/{task}/seed{seed}/{recipe}.{ext}",
        model=MODELS,
        task=ATTACK_TASKS,
        seed=SEEDS,
        recipe=ATTACK_RECIPES,
        ext=("json", "jsonl"),
    )
    if ATTACK_TRIGGERS:
        out += expand(
            "results/attacks/transfer/{task}/seed{seed}/universal_triggers.csv",
            task=ATTACK_TASKS,
            seed=SEEDS,
        )
    return out


def profile_reserved_threads():
    """Threads a profile job reserves: every core of a local run, so that nothing runs beside it (see
    rules/profile.smk); on a cluster its own threads (an exclusive node keeps others away there).
    """
    threads = int(config["profile"]["threads"])
    if not workflow.local_exec:
        return threads
    try:
        return max(threads, int(workflow.cores))
    except Exception:  # no --cores (e.g. some dry runs): nothing runs anyway
        return threads


def attack_figure_names():
    """Names of kernels.report.attacks.ATTACK_FIGURES, read from the source (as report_figure_names)."""
    path = os.path.join(REPO, "kernels", "report", "attacks.py")
    with open(path, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "ATTACK_FIGURES" for t in node.targets
        ):
            return [call.args[0].value for call in node.value.elts]
    raise RuntimeError("kernels/report/attacks.py: ATTACK_FIGURES not found")


def attack_result_files(kind):
    """The attack files the report reads: `summaries` ({recipe}.json), `lines` ({recipe}.jsonl) or `transfer`."""
    ending = {"summaries": ".json", "lines": ".jsonl", "transfer": ".csv"}[kind]
    return [f for f in attack_outputs() if f.endswith(ending)]
