# Helpers shared by every stage file: the configured grid, per-model settings, and the kernels sources
# each job depends on. Everything a job depends on reaches it through `params:` or `input:`, so a
# config change re-runs exactly the jobs it affects.

import glob
import os
import copy

from kernels.data import TASKS, ADVGLUE_SETS

REPO = workflow.basedir


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


def repo_path(path):
    """Config paths are relative to the repository, wherever Snakemake's working directory is."""
    return path if os.path.isabs(path) else os.path.join(REPO, path)


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
    return sorted(set(files))


MODEL_CODE = ("models", "ops", "modules")


def finetune_hp(model):
    """Global finetune settings overridden by the model's own `finetune:` block."""
    hp = copy.deepcopy(config["finetune"])
    hp.update(copy.deepcopy(model_cfg(model).get("finetune") or {}))
    hp.pop("resources", None)
    hp.pop("threads", None)
    return hp


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


# Input functions and parameters of the stage rules.


def glue_data_params():
    data = config["data"]
    return dict(
        source=data["source"],
        bundled_dir=repo_path(data["bundled_dir"]),
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
