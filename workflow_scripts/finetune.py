"""Fine-tune one model on one GLUE task with one seed (rule ``finetune``).

Writes config.json, model.safetensors, tokenizer files, train_log.csv and finetune_info.json into the directory of
``output.config``; resumes from ``params.checkpoint_dir`` when a previous attempt left a checkpoint.
"""


import argparse
import json
from pathlib import Path

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.io import log_to
from kernels.ops.backend import set_force_torch
from kernels.training.job import finetune_job


def main(train: str, tokenizer: str | None, config_out: str, weights_out: str, tokenizer_out: str,
         train_log_out: str, family: str, arch: dict | None, pretrained: str | None, revision: str | None,
         hp: dict, num_labels: int, checkpoint_dir: str, seed: int, threads: int = 1,
         log: str | None = None, allow_pickle: bool = False, force_torch: bool = False,
         require_fla: bool = False, info_out: str | None = None, checkpoint_prune_parents: int = 0) -> None:
    if force_torch:
        set_force_torch(True)  # config kernels.force_torch: never use fla's triton kernels
    model_dir = Path(config_out).parent
    outputs = [config_out, weights_out, tokenizer_out, train_log_out] + ([info_out] if info_out else [])
    for out in outputs:
        if Path(out).parent != model_dir:
            raise ValueError(f"output {out} must be in the model directory {model_dir}")
    with log_to(log, outputs=outputs):
        finetune_job(train_path=train, tokenizer_file=tokenizer, model_dir=model_dir, family=family, arch=arch,
                     pretrained=pretrained, revision=revision, hp=hp, num_labels=num_labels,
                     checkpoint_dir=checkpoint_dir, seed=seed, threads=threads, allow_pickle=allow_pickle,
                     require_fla=require_fla, checkpoint_prune_parents=checkpoint_prune_parents)
    for out in outputs:
        if not Path(out).exists():
            raise RuntimeError(f"fine-tuning finished but did not write {out}")


CHECKPOINT_TIMING = ("checkpoint_every", "checkpoint_every_minutes")


def checkpoint_timing(config: dict, model: str) -> dict:
    """When resumable checkpoints are written (the model's own finetune block first). Read from the config,
    not from params: it never changes the model, so changing it must not re-run a finished fine-tune."""
    merged = {**(config.get("finetune") or {}), **((config["models"][model].get("finetune")) or {})}
    return {key: merged[key] for key in CHECKPOINT_TIMING if key in merged}


if "snakemake" in globals():
    sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
    main(train=sm.input.train, tokenizer=sm.input.get("tokenizer"), config_out=sm.output.config,
         weights_out=sm.output.weights, tokenizer_out=sm.output.tokenizer, train_log_out=sm.output.train_log,
         family=sm.params.family, arch=sm.params.arch, pretrained=sm.params.pretrained,
         revision=sm.params.revision, hp={**dict(sm.params.hp), **checkpoint_timing(sm.config, sm.wildcards.model)},
         num_labels=int(sm.params.num_labels),
         checkpoint_dir=sm.params.checkpoint_dir, seed=int(sm.wildcards.seed), threads=sm.threads,
         log=sm.log[0] if len(sm.log) else None, allow_pickle=bool(sm.params.get("allow_pickle", False)),
         force_torch=bool(sm.params.get("force_torch", False)),
         require_fla=bool(sm.params.get("require_fla", False)), info_out=sm.output.get("info"),
         checkpoint_prune_parents=int(sm.params.get("checkpoint_prune_parents", 0)))
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", required=True, help="GLUE train parquet")
    parser.add_argument("--tokenizer", help="tokenizer.json of the from-scratch tokenizer")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--family", required=True)
    parser.add_argument("--arch", default="{}", help="JSON dict of architecture settings")
    parser.add_argument("--pretrained")
    parser.add_argument("--revision")
    parser.add_argument("--hp", default="{}", help="JSON dict of finetune settings")
    parser.add_argument("--num-labels", type=int, required=True)
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--allow-pickle", action="store_true", help="accept pytorch_model.bin checkpoints")
    parser.add_argument("--force-torch", action="store_true", help="never use fla's triton kernels")
    parser.add_argument("--require-fla", action="store_true", help="fail unless fla's triton kernels will run")
    args = parser.parse_args()
    d = Path(args.model_dir)
    main(train=args.train, tokenizer=args.tokenizer, config_out=str(d / "config.json"),
         weights_out=str(d / "model.safetensors"), tokenizer_out=str(d / "tokenizer.json"),
         train_log_out=str(d / "train_log.csv"), family=args.family, arch=json.loads(args.arch),
         pretrained=args.pretrained, revision=args.revision, hp=json.loads(args.hp), num_labels=args.num_labels,
         checkpoint_dir=args.checkpoint_dir, seed=args.seed, threads=args.threads,
         allow_pickle=args.allow_pickle, force_torch=args.force_torch, require_fla=args.require_fla,
         info_out=str(d / "finetune_info.json"))
