"""One evaluation job of the workflow: load a fine-tuned model dir, predict GLUE validation and
AdvGLUE, write predictions.parquet and metrics.json (schemas in kernels.evaluation.evaluate)."""

from __future__ import annotations

from pathlib import Path

import torch

from kernels.data.tasks import get_task
from kernels.evaluation.evaluate import compute_metrics, predict_all, read_frames
from kernels.io import write_json, write_parquet


def load_finetuned(family: str, model_dir: str | Path):
    """The classifier and tokenizer saved by the fine-tuning job in ``model_dir``.

    Weights saved in bf16 are loaded as float32, as fine-tuning held them; the training precision comes
    from autocast (see ``evaluate_job``), not from the storage dtype.
    """
    from kernels.families import family as family_named
    from kernels.tokenization import load_tokenizer

    model = family_named(family).load_finetuned(model_dir, dtype=torch.float32)
    return model, load_tokenizer(model_dir)


def _check_names(task: str, glue_names: list[str], adv_names: list[str]) -> None:
    spec = get_task(task)
    if set(glue_names) != set(spec.eval_splits):
        raise ValueError(f"task {task}: GLUE inputs {glue_names} do not match its eval splits {list(spec.eval_splits)}")
    if set(adv_names) != set(spec.advglue_sets):
        raise ValueError(f"task {task}: AdvGLUE inputs {adv_names} do not match its sets {list(spec.advglue_sets)}")


def evaluate_job(*, model_dir: str | Path, family: str, task: str, glue_paths: list, advglue_paths: list,
                 predictions_path: str | Path, metrics_path: str | Path, batch_size: int, bootstrap_samples: int,
                 max_length: int, device: str = "cpu", threads: int | None = None, model_name: str | None = None,
                 seed: int | None = None, dtype: str = "float32", require_fla: bool = False) -> dict:
    """Predict and score one fine-tuned model; ``dtype`` is the autocast dtype (the fine-tuning one)."""
    from kernels.families import family as family_named
    from kernels.ops.backend import fla_call_record, fla_kernel_calls, kernel_provenance
    from kernels.ops.backend import require_fla as check_fla
    from kernels.training.loop import resolve_device

    if require_fla:
        check_fla(resolve_device(device))
    if threads:
        torch.set_num_threads(int(threads))
    glue = read_frames(list(glue_paths))
    advglue = read_frames(list(advglue_paths))
    _check_names(task, list(glue), list(advglue))
    model, tokenizer = load_finetuned(family, model_dir)
    calls_before = fla_kernel_calls()
    predictions = predict_all(model, tokenizer, glue, advglue, max_length=int(max_length),
                              batch_size=int(batch_size), device=device, dtype=dtype)
    # The bootstrap is seeded by the run's seed, so re-running a job reproduces its intervals.
    metrics = compute_metrics(predictions, task, bootstrap_samples=int(bootstrap_samples),
                              bootstrap_seed=int(seed or 0), model=model_name, seed=seed)
    # fla_kernel_calls: calls of fla's kernels by the predictions above, proof that they ran
    metrics["provenance"] = {**kernel_provenance(resolve_device(device)), **fla_call_record(calls_before),
                             "autocast_dtype": dtype,
                             "implementation": family_named(family).implementation(model, resolve_device(device))}
    write_parquet(predictions_path, predictions)
    write_json(metrics_path, metrics)
    return metrics
