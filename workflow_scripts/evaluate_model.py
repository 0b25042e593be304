"""Evaluate one fine-tuned model on its task's GLUE validation split(s) and AdvGLUE set(s)
(rule ``evaluate``): writes predictions.parquet and metrics.json (schemas documented in
kernels/evaluation/evaluate.py)."""


import argparse
from pathlib import Path

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.io import log_to
from kernels.evaluation.job import evaluate_job
from kernels.ops.backend import set_force_torch


def main(config: str, weights: str, glue: list[str], advglue: list[str], predictions: str, metrics: str,
         family: str, task: str, model: str | None, seed: int | None, batch_size: int = 64,
         bootstrap_samples: int = 1000, max_length: int = 128, device: str = "cpu", threads: int = 1,
         force_torch: bool = False, dtype: str = "float32", require_fla: bool = False) -> None:
    if force_torch:
        set_force_torch(True)  # config kernels.force_torch: never use fla's triton kernels
    model_dir = Path(config).parent
    if Path(weights).parent != model_dir:
        raise ValueError(f"weights {weights} and config {config} must be in the same model directory")
    evaluate_job(model_dir=model_dir, family=family, task=task, glue_paths=list(glue),
                 advglue_paths=list(advglue), predictions_path=predictions, metrics_path=metrics,
                 batch_size=batch_size, bootstrap_samples=bootstrap_samples, max_length=max_length,
                 device=device, threads=threads, model_name=model, seed=seed, dtype=dtype,
                 require_fla=require_fla)


if "snakemake" in globals():
    sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
    with log_to(sm.log[0] if len(sm.log) else None, outputs=sm.output):
        main(config=sm.input.config, weights=sm.input.weights, glue=list(sm.input.glue), advglue=list(sm.input.advglue),
             predictions=sm.output.predictions, metrics=sm.output.metrics, family=sm.params.family,
             task=sm.wildcards.task, model=sm.wildcards.model, seed=int(sm.wildcards.seed),
             batch_size=int(sm.params.batch_size), bootstrap_samples=int(sm.params.bootstrap_samples),
             max_length=int(sm.params.max_length), device=sm.params.device, threads=sm.threads,
             force_torch=bool(sm.params.get("force_torch", False)), dtype=sm.params.get("dtype", "float32"),
             require_fla=bool(sm.params.get("require_fla", False)))
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--family", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--glue", nargs="+", required=True, help="validation parquet file(s)")
    parser.add_argument("--advglue", nargs="*", default=[], help="AdvGLUE parquet file(s)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--bootstrap-samples", type=int, default=1000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--force-torch", action="store_true", help="never use fla's triton kernels")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="autocast dtype: the one the model was fine-tuned with")
    parser.add_argument("--require-fla", action="store_true", help="fail unless fla's triton kernels will run")
    args = parser.parse_args()
    out = Path(args.out_dir)
    main(config=str(Path(args.model_dir) / "config.json"), weights=str(Path(args.model_dir) / "model.safetensors"),
         glue=args.glue, advglue=args.advglue, predictions=str(out / "predictions.parquet"),
         metrics=str(out / "metrics.json"), family=args.family, task=args.task, model=args.model, seed=args.seed,
         batch_size=args.batch_size, bootstrap_samples=args.bootstrap_samples, max_length=args.max_length,
         device=args.device, threads=args.threads, force_torch=args.force_torch, dtype=args.dtype,
         require_fla=args.require_fla)
