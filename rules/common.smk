# Helpers shared by every stage file: the configured grid, per-model settings, and the kernels sources
# each job depends on. Everything a job depends on reaches it through `params:` or `input:`, so a
# config change re-runs exactly the jobs it affects.

import functools
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
_pretrained = _load_standalone("pretrained.py", "_workflow_pretrained")
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
    for name in config.get("selected_models") or config["models"]:
        # before any job runs, so that a bad checkpoint never costs the previous outputs of a job
        model = config["models"][name]
        errors += _pretrained.pretrained_errors(
            model.get("pretrained"),
            f"models.{name}.pretrained",
            base=os.getcwd(),
            allow_pickle=bool(model.get("allow_pickle", False)),
        )
    for name, model in config["models"].items():
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
# The grid in a fixed order, for jobs whose output does not depend on the config's order (tables, the
# transfer matrix): reordering `models:` (or a --configfile, which Snakemake merges first) re-runs nothing.
SORTED_MODELS, SORTED_TASKS, SORTED_SEEDS = (
    sorted(MODELS),
    sorted(TASK_LIST),
    sorted(SEEDS),
)


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
    return list(_kernel_sources(subpackages))


@functools.lru_cache(maxsize=None)
def _kernel_sources(subpackages):
    # once per set of subpackages: every job of a rule asks for the same files (globbing them per job
    # made planning a large DAG slow)
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
    return tuple(sorted({relocatable(f) for f in files}))


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


# Finetune settings that are not hyper-parameters: resources and threads are requests, and checkpoint
# timing decides only when a resumable checkpoint is written, never the model (a resumed run is the same
# run: kernels.training.loop.RESUME_NEUTRAL_FIELDS). The fine-tune script reads the timing from the config
# itself (workflow_scripts/finetune.py: checkpoint_timing), so changing it re-runs nothing.
NOT_HYPERPARAMETERS = (
    "resources",
    "threads",
    "checkpoint_every",
    "checkpoint_every_minutes",
)


def finetune_hp(model):
    """Global finetune settings overridden by the model's own `finetune:` block."""
    hp = copy.deepcopy(config["finetune"])
    hp.update(copy.deepcopy(model_cfg(model).get("finetune") or {}))
    for key in NOT_HYPERPARAMETERS:
        hp.pop(key, None)
    return canonical(hp)


def scratch_only(model, value):
    """``value`` for a from-scratch model; None for a pretrained one, which takes it from its checkpoint
    (e.g. ``arch``: a pretrained model's architecture is the checkpoint's, so editing arch re-runs nothing).
    """
    return None if is_pretrained(model) else value


def pretrained_only(model, value):
    """``value`` for a pretrained model (``revision``, ``allow_pickle``); None for a from-scratch one."""
    return value if is_pretrained(model) else None


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


def data_source_params(hub_keys):
    """Where the data comes from: the bundled folder (derived from the inputs) for bundled data, the hub
    settings ``{param: data.hub key}`` only for hub data, so that a hub setting never re-runs a bundled run.
    """
    data = config["data"]
    if data["source"] == "bundled":
        return dict(source="bundled", bundled_dir=bundled_dir_of_inputs)
    return dict(
        source="hub",
        **{param: data["hub"].get(key) for param, key in hub_keys.items()},
    )


def glue_data_params():
    data = config["data"]
    return dict(
        **data_source_params({"hub_dataset": "glue", "revision": "glue_revision"}),
        max_train_examples=data["max_train_examples"],
        max_eval_examples=data["max_eval_examples"],
        subset_seed=data["subset_seed"],
    )


def advglue_data_params():
    return data_source_params(
        {
            "hub_dataset": "advglue",
            "annotations_url": "advglue_annotations_url",
            "revision": "advglue_revision",
            "annotations_sha256": "advglue_annotations_sha256",
        }
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
# The attack settings read by each rule (adding a setting for one rule is one line here). The recipe
# settings of the `attack` rule are split further by recipe (ATTACK_RECIPE_KEYS).
ATTACK_RULE_KEYS = {
    "attack": ("examples", "example_seed", "seed", "query_budget", "batch_size"),
    "attack_trigger": ("examples", "example_seed", "seed", "trigger", "batch_size"),
    "trigger_transfer": ("examples", "example_seed", "batch_size"),
    # the summary of a recipe's lines: TextAttack's rates with bootstrap CIs (seeded by attack.seed)
    "attack_summary": ("bootstrap_samples", "seed"),
}


def attack_settings_read(rule_name, recipe=None):
    """Names of the attack settings that rule ``rule_name`` (for ``recipe``) reads."""
    keys = ATTACK_RULE_KEYS[rule_name]
    if rule_name == "attack":
        keys = keys + ATTACK_RECIPE_KEYS.get(recipe, ALL_RECIPE_KEYS)
    return keys


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


def victim_params(model):
    """How a fine-tuned model is run as a victim: as it was fine-tuned (max length, autocast dtype), on the
    attack device (default: the fine-tuning one)."""
    hp = finetune_hp(model)
    return dict(
        family=model_cfg(model)["family"],
        max_length=hp["max_length"],
        dtype=hp["dtype"],
        device=ATTACK.get("device", hp["device"]),
    )


def attack_params(rule, model, recipe=None):
    """What one attack-stage job depends on besides its files: the settings its rule (and recipe) reads,
    and how the victim runs (sorted keys: see `canonical`)."""
    settings = {k: ATTACK[k] for k in attack_settings_read(rule, recipe) if k in ATTACK}
    return canonical(dict(settings, **victim_params(model)))


def attack_outputs():
    """Every file of the attack stage (README "Outputs")."""
    grid = dict(model=MODELS, task=ATTACK_TASKS, seed=SEEDS)
    out = expand(
        "results/attacks/{model}/{task}/seed{seed}/{recipe}.{ext}",
        recipe=ATTACK_RECIPES,
        ext=("json", "jsonl", "search.json"),
        **grid,
    )
    if ATTACK_TRIGGERS:
        out += expand(
            "results/attacks/{model}/{task}/seed{seed}/universal_trigger.json", **grid
        )
        out += expand(
            "results/attacks/transfer/{task}/seed{seed}/universal_triggers.csv",
            task=ATTACK_TASKS,
            seed=SEEDS,
        )
    return out


def runs_on_a_cluster():
    """Whether the jobs go to a cluster executor (SLURM), also when planning a dry run of one: Snakemake
    then plans with its dry-run executor, but it has set use_threads for the intended remote executor
    (snakemake.api.DAGApi.execute_workflow derives it from that executor's settings)."""
    settings = getattr(workflow.executor_plugin, "common_settings", None)
    if settings is None:  # no run planned (--summary, --lint, ...)
        return False
    if not (settings.dryrun_exec or settings.touch_exec):
        return not settings.local_exec
    execution = workflow.execution_settings
    return bool(execution is not None and execution.use_threads and os.name == "posix")


def profile_reserved_threads(wildcards=None):
    """Threads a profile job reserves: every core of a local run, so that nothing runs beside it (see
    rules/profile.smk); on a cluster its own threads, which is what `--profile profiles/slurm` requests (an
    exclusive node keeps others away there). Evaluated when the jobs are planned, once Snakemake knows the
    executor, so that a dry run shows what the run will request.
    """
    threads = int(config["profile"]["threads"])
    if runs_on_a_cluster():
        return threads
    try:
        return max(threads, int(workflow.cores))
    except Exception:  # no --cores: nothing runs anyway
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
    grid = dict(model=MODELS, task=ATTACK_TASKS, seed=SEEDS, recipe=ATTACK_RECIPES)
    if kind == "summaries":
        return expand("results/attacks/{model}/{task}/seed{seed}/{recipe}.json", **grid)
    if kind == "lines":
        return expand(
            "results/attacks/{model}/{task}/seed{seed}/{recipe}.jsonl", **grid
        )
    return [f for f in attack_outputs() if f.endswith(".csv")]


MODEL_DIR_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "train_log.csv",
    "finetune_info.json",
)


def contract_outputs():
    """Every file of README's Outputs contract for this config, except the report's own (rule build_report)."""
    grid = dict(model=MODELS, task=TASK_LIST, seed=SEEDS)
    files = [glue_split_path(t, split) for t in TASK_LIST for split in TASKS[t].splits]
    files += [advglue_path(s) for s in ADVGLUE_SETS]
    if not all(is_pretrained(m) for m in MODELS):
        files += [
            "results/tokenizer/tokenizer.json",
            "results/tokenizer/tokenizer_config.json",
        ]
    files += expand(
        "results/models/{model}/{task}/seed{seed}/{name}", name=MODEL_DIR_FILES, **grid
    )
    files += expand(
        "results/eval/{model}/{task}/seed{seed}/{name}",
        name=("predictions.parquet", "metrics.json"),
        **grid,
    )
    files += expand(
        "results/eval/{model}/advglue_{kind}_seed{seed}.json",
        kind=("predictions", "score"),
        model=MODELS,
        seed=SEEDS,
    )
    files += expand("results/efficiency/{model}.csv", model=MODELS)
    files += [
        f"results/tables/{name}.csv"
        for name in (
            "metrics",
            "advglue_scores",
            "finetune_throughput",
            "pairwise_significance",
            "efficiency",
            "efficiency_slopes",
        )
    ]
    return files + attack_outputs()


# Attack recipes and their WordNet (kernels/attacks/recipes.py, kernels/attacks/wordnet.py). The recipe names
# and what each changes come from the `@recipe(...)` registrations, read from the source (as
# attack_figure_names): adding a recipe touches that file only.


def attack_recipe_registry():
    """``{name: {"changes": "characters" / "words", "reads": (settings only it reads)}}`` of every
    ``@recipe("name", changes=..., reads=...)`` in recipes.py."""
    path = os.path.join(REPO, "kernels", "attacks", "recipes.py")
    with open(path, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for call in node.decorator_list:
                if (
                    isinstance(call, ast.Call)
                    and getattr(call.func, "id", None) == "recipe"
                ):
                    keywords = {k.arg: k.value for k in call.keywords}
                    found[call.args[0].value] = {
                        "changes": keywords["changes"].value,
                        "reads": (
                            tuple(ast.literal_eval(keywords["reads"]))
                            if "reads" in keywords
                            else ()
                        ),
                    }
    if not found:
        raise RuntimeError("kernels/attacks/recipes.py: no @recipe registrations found")
    return found


ATTACK_RECIPE_REGISTRY = attack_recipe_registry()
# Settings that only one recipe reads: the `reads=` of its @recipe in kernels/attacks/recipes.py.
ATTACK_RECIPE_KEYS = {name: r["reads"] for name, r in ATTACK_RECIPE_REGISTRY.items()}
ALL_RECIPE_KEYS = tuple(k for keys in ATTACK_RECIPE_KEYS.values() for k in keys)
RECIPE_WILDCARD = "|".join(ATTACK_RECIPE_REGISTRY)
_unknown_recipes = [r for r in ATTACK_RECIPES if r not in ATTACK_RECIPE_REGISTRY]
if _unknown_recipes:
    raise ValueError(
        f"config key 'attack.recipes' lists {_unknown_recipes}, which kernels/attacks/recipes.py does not "
        f"register (known: {sorted(ATTACK_RECIPE_REGISTRY)} and {TRIGGER_RECIPE!r})"
    )


def attack_wordnet(recipe):
    """The `wordnet` param of an attack job: attack.wordnet (`source`, `dir`) for the recipes that change
    words and the universal trigger (whose words it checks), nothing for the character recipes (a WordNet
    change re-runs only those jobs)."""
    if (
        recipe != TRIGGER_RECIPE
        and ATTACK_RECIPE_REGISTRY.get(recipe, {}).get("changes") != "words"
    ):
        return {}
    settings = ATTACK.get("wordnet") or {}
    source = settings.get("source", "bundled")
    directory = (
        settings.get("dir") if source == "nltk" else None
    )  # only nltk reads a WordNet directory
    if directory and not os.path.isabs(directory):
        directory = repo_path(directory)
    return canonical({"source": source, "dir": directory})


def attack_wordnet_inputs(wildcards):
    """The bundled WordNet table, for a job that reads it (editing the table re-runs those jobs)."""
    recipe = getattr(wildcards, "recipe", TRIGGER_RECIPE)
    if attack_wordnet(recipe).get("source") == "bundled":
        return [repo_path("resources/attacks/wordnet_synonyms.tsv")]
    return []
