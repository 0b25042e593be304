"""Disk a workflow run needs, computed from its config and the models' parameter counts.

``python -m kernels.training.disk config/config.yaml config/paper.yaml`` prints the plan of the
merged configs (later files override earlier ones, as Snakemake layers ``--configfile``). Parameters
are counted on the meta device (no memory, no download) from each model's architecture: the
``arch`` of a from-scratch model, or the recorded fields of the published checkpoint for the
paper's hub ids (``kernels.rehearsal.checkpoints.PUBLISHED_CONFIGS``).

- fine-tuned models: every (model, task, seed) keeps its weights in ``finetune.save_dtype``;
- pretrained downloads: each checkpoint once in the Hugging Face cache, as published (bf16);
- resumable checkpoints: while a fine-tune job runs it keeps one checkpoint, fp32 weights plus AdamW's
  two fp32 moments (12 bytes per parameter), removed once the model is written.
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml

BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
CHECKPOINT_BYTES_PER_PARAM = 4 + 4 + 4  # fp32 weights, AdamW exp_avg and exp_avg_sq
HUB_CHECKPOINTS = {  # hub id -> family whose published config describes it
    "fla-hub/transformer-1.3B-100B": "transformer_pp",
    "fla-hub/gla-1.3B-100B": "gla",
    "ridger/MMfreeLM-1.3B": "mmfree",
}
GB = 1e9


@dataclass(frozen=True)
class DiskPlan:
    finetuned_models: int
    finetuned_gb: float          # all fine-tuned model dirs together
    pretrained_gb: float         # downloaded checkpoints (HF cache), once each
    checkpoint_gb_per_job: float  # the resumable checkpoint of one running fine-tune job
    total_gb: float              # finetuned + pretrained + one running job's checkpoint


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
    from kernels.models import causal_lm_class, classifier_class, config_class

    fields = {k: v for k, v in fields.items() if k not in ("architectures", "model_type", "torch_dtype")}
    with torch.device("meta"):
        classifier = classifier_class(family)(config_class(family)(num_labels=3, **fields))
        causal_lm = causal_lm_class(family)(config_class(family)(**fields))
    return (sum(p.numel() for p in classifier.parameters()), sum(p.numel() for p in causal_lm.parameters()))


def model_fields(model: dict, vocab_size: int) -> dict:
    pretrained = model.get("pretrained")
    if pretrained:
        from kernels.rehearsal.checkpoints import PUBLISHED_CONFIGS

        if pretrained not in HUB_CHECKPOINTS:
            raise ValueError(f"disk plan: no recorded config for checkpoint {pretrained!r}; known: "
                             f"{sorted(HUB_CHECKPOINTS)}")
        return dict(PUBLISHED_CONFIGS[HUB_CHECKPOINTS[pretrained]])
    return {**model.get("arch", {}), "vocab_size": vocab_size}


def disk_plan(config: dict) -> DiskPlan:
    names = config.get("selected_models") or list(config["models"])
    runs = len(config["tasks"]) * len(config["seeds"])
    finetuned = pretrained = checkpoint = 0.0
    for name in names:
        model = config["models"][name]
        settings = {**config["finetune"], **(model.get("finetune") or {})}
        save_dtype = settings.get("save_dtype") or "auto"
        save_dtype = settings["dtype"] if save_dtype == "auto" else save_dtype
        classifier_params, lm_params = _parameter_counts(model["family"],
                                                         model_fields(model, config["tokenizer"]["vocab_size"]))
        finetuned += runs * classifier_params * BYTES[save_dtype]
        if model.get("pretrained"):
            pretrained += lm_params * BYTES["bfloat16"]
        checkpoint = max(checkpoint, classifier_params * CHECKPOINT_BYTES_PER_PARAM)
    return DiskPlan(finetuned_models=len(names) * runs, finetuned_gb=round(finetuned / GB, 1),
                    pretrained_gb=round(pretrained / GB, 1), checkpoint_gb_per_job=round(checkpoint / GB, 1),
                    total_gb=round((finetuned + pretrained + checkpoint) / GB, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help="config files, layered in order")
    args = parser.parse_args()
    print(json.dumps(asdict(disk_plan(merged_config(args.configs)))))


if __name__ == "__main__":
    main()
