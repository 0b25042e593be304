"""Disk a workflow run needs, computed from its config and the models' parameter counts.

``python -m kernels.training.disk config/config.yaml config/paper.yaml`` prints the plan of the
merged configs (later files override earlier ones, as Snakemake layers ``--configfile``). Parameters
are counted on the meta device (no memory, no download) by each model's family (kernels.families) from its
architecture: the ``arch`` of a from-scratch model, the ``config.json`` of a local checkpoint directory, or
the recorded fields of a published checkpoint (``kernels.rehearsal.published``; the same planner for
``config/paper.yaml`` and ``config/zoo.yaml``). A hub id without a recorded config is listed in
``uncounted_models`` instead of being guessed.

- fine-tuned models: every (model, task, seed) keeps its weights in ``finetune.save_dtype``;
- pretrained downloads: each checkpoint once in the Hugging Face cache, as published (bf16), however many
  models of the config read it;
- resumable checkpoints: while a fine-tune job runs it keeps one checkpoint, fp32 weights plus AdamW's
  two fp32 moments (12 bytes per parameter), removed once the model is written.
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
CHECKPOINT_BYTES_PER_PARAM = 4 + 4 + 4  # fp32 weights, AdamW exp_avg and exp_avg_sq
GB = 1e9


@dataclass(frozen=True)
class DiskPlan:
    finetuned_models: int
    finetuned_gb: float          # all fine-tuned model dirs together
    pretrained_gb: float         # downloaded checkpoints (HF cache), once each
    checkpoint_gb_per_job: float  # the resumable checkpoint of one running fine-tune job
    total_gb: float              # finetuned + pretrained + one running job's checkpoint
    uncounted_models: tuple[str, ...] = ()  # models whose published config is not recorded (not in the sums)


def merged_config(paths: list[str | Path]) -> dict:
    """Layer the YAML files as Snakemake does with ``--configfile`` (nested dicts merged, rest replaced)."""
    def merge(base: dict, top: dict) -> dict:
        for key, value in top.items():
            base[key] = merge(base.get(key) or {}, value) if isinstance(value, dict) else copy.deepcopy(value)
        return base

    config: dict = {}
    for path in paths:
        config = merge(config, yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    return config


def _parameter_counts(family: str, fields: dict) -> tuple[int, int]:
    """(classifier parameters, causal-LM parameters) of ``family`` with config ``fields``, on the meta device."""
    from kernels.families import family as family_named

    return family_named(family).parameter_counts(fields)


def _special_floats(item: dict):
    return float(item["__float__"]) if set(item) == {"__float__"} else item


class UnrecordedCheckpoint(KeyError):
    """A hub checkpoint whose published config is not recorded (kernels.rehearsal.published)."""


def model_fields(model: dict, vocab_size: int) -> dict:
    """The config fields a model is counted from: its checkpoint's (a local directory's config.json, or the
    recorded published fields of a hub id), or its ``arch`` with the workflow's vocabulary."""
    pretrained = model.get("pretrained")
    if pretrained:
        local = Path(pretrained) / "config.json"
        if local.is_file():  # transformers writes infinite floats as {"__float__": "Infinity"}
            return json.loads(local.read_text(encoding="utf-8"), object_hook=_special_floats)
        from kernels.rehearsal.published import published_config

        try:
            return published_config(pretrained, model.get("family"))
        except KeyError as error:
            raise UnrecordedCheckpoint(f"disk plan: {error.args[0]}") from None
    return {**model.get("arch", {}), "vocab_size": vocab_size}


def disk_plan(config: dict) -> DiskPlan:
    names = config.get("selected_models") or list(config["models"])
    runs = len(config["tasks"]) * len(config["seeds"])
    finetuned = checkpoint = 0.0
    downloads: dict[str, int] = {}  # hub id or directory -> causal-LM parameters (each downloaded once)
    counted, uncounted = 0, []
    for name in names:
        model = config["models"][name]
        settings = {**config["finetune"], **(model.get("finetune") or {})}
        save_dtype = settings.get("save_dtype") or "auto"
        save_dtype = settings["dtype"] if save_dtype == "auto" else save_dtype
        try:
            fields = model_fields(model, config["tokenizer"]["vocab_size"])
        except UnrecordedCheckpoint:
            uncounted.append(name)
            continue
        classifier_params, lm_params = _parameter_counts(model["family"], fields)
        counted += 1
        finetuned += runs * classifier_params * BYTES[save_dtype]
        if model.get("pretrained"):
            downloads[model["pretrained"]] = max(downloads.get(model["pretrained"], 0), lm_params)
        checkpoint = max(checkpoint, classifier_params * CHECKPOINT_BYTES_PER_PARAM)
    pretrained = sum(downloads.values()) * BYTES["bfloat16"]
    return DiskPlan(finetuned_models=counted * runs, finetuned_gb=round(finetuned / GB, 1),
                    pretrained_gb=round(pretrained / GB, 1), checkpoint_gb_per_job=round(checkpoint / GB, 1),
                    total_gb=round((finetuned + pretrained + checkpoint) / GB, 1), uncounted_models=tuple(uncounted))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help="config files, layered in order")
    args = parser.parse_args()
    print(json.dumps(asdict(disk_plan(merged_config(args.configs)))))


if __name__ == "__main__":
    main()
