"""Fine-tuning loop for sequence classifiers.

- Data: length-bucketed dynamic padding (``kernels.training.batching``).
- Optimiser: AdamW. Weight decay applies only to weight matrices of linear layers
  (parameters with 2+ dimensions that are not embeddings). Biases, norm gains (1-D) and embedding
  tables are not decayed: decaying a norm gain or a bias pulls it towards 0, which changes what the
  layer computes rather than regularising it, and embedding rows of rare tokens would shrink just
  because they are rarely updated.
- Schedule: linear warm-up over ``warmup_ratio`` of all optimizer steps, then linear decay to 0
  (``transformers.get_linear_schedule_with_warmup``).
- Gradient clipping to ``max_grad_norm`` (total L2 norm); 0 or None disables it.
- Memory (the update stays the full batch's): ``gradient_checkpointing`` recomputes every decoder block
  in backward; ``max_tokens_per_step`` runs a batch as micro-batches of at most that many padded tokens
  with their losses weighted by their share of the rows (``split_batch``), so the effective batch stays
  ``batch_size`` and ``train_log.csv`` still logs the full batch's mean loss. Before training, a memory
  plan (``kernels.training.memory``) estimates the peak; on CUDA a run that cannot fit stops at once,
  naming the settings that would fit. The plan is logged to stderr and returned on ``FinetuneResult``.
- Progress bar on stderr (tqdm); ``train_log.csv`` rows (step, loss, lr, tokens_per_s, elapsed_s)
  every ``log_every`` steps and at the last step; ``loss`` is the mean loss of the steps since the
  previous row, ``tokens_per_s`` counts non-padding tokens over the same interval, ``lr`` is the
  rate used by the row's last step, ``elapsed_s`` is the training time since the start (summed
  over resumed attempts).
- Resumable: a checkpoint every ``checkpoint_every`` steps and every ``checkpoint_every_minutes``
  (``kernels.training.checkpoint``); a run that finds one continues from it, logs "resumed from step N"
  and ends with the same weights as an uninterrupted run on CPU; one of another training setup is set
  aside with a warning and the run starts over. A non-finite loss stops the job with an error naming the step; the last good checkpoint is
  kept. The checkpoint is removed once the final outputs are written.
- Outputs (``write_model_dir``): config.json, model.safetensors, tokenizer files and
  train_log.csv, each staged in a temporary directory beside the model dir and renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from kernels.io import honour_umask
from kernels.training.batching import (EncodedExamples, batches_per_epoch, collate, encode_examples,
                                       plan_batches)
from kernels.training.checkpoint import TrainingState, load_checkpoint, remove_checkpoint, save_checkpoint
from kernels.families.base import FamilyError
from kernels.models.common import set_activation_checkpointing
from kernels.ops.backend import fla_call_record, fla_kernel_calls
from kernels.training.memory import can_plan, check_device_memory, log_plan, plan_memory

LOG_COLUMNS = ["step", "loss", "lr", "tokens_per_s", "elapsed_s"]


@dataclass(frozen=True)
class FinetuneHyperparams:
    """The ``finetune`` section of the config (plus ``seed``); see config/config.yaml."""

    epochs: float = 2
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float | None = 1.0
    max_length: int = 128
    bucket_batches: int = 50
    checkpoint_every: int = 200
    # ... and also once this many minutes passed since the last one (None: by steps only), so that runs
    # shorter than checkpoint_every steps but long in time are covered too
    checkpoint_every_minutes: float | None = None
    log_every: int = 10
    device: str = "cpu"
    dtype: str = "float32"
    # Memory only, the update stays the same (see ``MEMORY_ONLY_FIELDS``): recompute every decoder block in
    # backward instead of keeping its activations; split batches into micro-batches of at most this many
    # padded tokens (None: one pass per batch) whose gradients add up to the full batch's.
    gradient_checkpointing: bool = False
    max_tokens_per_step: int | None = None
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "finetune config") -> "FinetuneHyperparams":
        """Build from a config dict, rejecting unknown keys and bad values.

        ``threads`` is accepted and ignored: it is a resource setting passed separately.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known - {"threads"})
        if unknown:
            raise ValueError(f"{source}: unknown field(s) {unknown}; known: {sorted(known)}")
        hp = cls(**{k: v for k, v in values.items() if k in known})
        hp.validate(source)
        return hp

    def validate(self, source: str) -> None:
        checks = [
            ("epochs", self.epochs > 0), ("batch_size", self.batch_size >= 1), ("lr", self.lr > 0),
            ("weight_decay", self.weight_decay >= 0), ("warmup_ratio", 0 <= self.warmup_ratio < 1),
            ("max_grad_norm", self.max_grad_norm is None or self.max_grad_norm >= 0),
            ("max_length", self.max_length >= 2), ("bucket_batches", self.bucket_batches >= 1),
            ("checkpoint_every", self.checkpoint_every >= 1), ("log_every", self.log_every >= 1),
            ("checkpoint_every_minutes", self.checkpoint_every_minutes is None or self.checkpoint_every_minutes > 0),
            ("device", self.device in ("cpu", "cuda", "auto")),
            ("dtype", self.dtype in ("float32", "bfloat16")),
            ("gradient_checkpointing", isinstance(self.gradient_checkpointing, bool)),
            # every example must fit a micro-batch of its own, or the budget could not be kept
            ("max_tokens_per_step", self.max_tokens_per_step is None or (
                isinstance(self.max_tokens_per_step, int) and not isinstance(self.max_tokens_per_step, bool)
                and self.max_tokens_per_step >= self.max_length)),
        ]
        for name, ok in checks:
            if not ok:
                hint = (f" (an integer >= max_length {self.max_length}, or null)" if name == "max_tokens_per_step"
                        else "")
                raise ValueError(f"{source}: invalid value for field {name!r}: {getattr(self, name)!r}{hint}")


@dataclass
class FinetuneResult:
    completed: bool          # False when stopped by ``stop_after_steps`` (checkpoint kept)
    steps: int
    total_steps: int
    log: pd.DataFrame
    tokens: int = 0          # non-padding tokens trained on, all attempts together
    memory_plan: dict | None = None  # kernels.training.memory.plan_memory (+ the device's memory on CUDA)


def progress_interval_s(stream) -> float:
    """tqdm's refresh interval: live on a terminal, every 30 s in a rule's log (a bar redrawn ten times a
    second would fill the log with thousands of lines)."""
    isatty = getattr(stream, "isatty", None)
    return 0.1 if callable(isatty) and isatty() else 30.0


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)


def autocast_context(device: torch.device, dtype: str):
    if dtype == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay linear weight matrices only (see module docstring for why)."""
    embedding_params = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    decay, no_decay, seen = [], [], set()
    for param in model.parameters():
        if not param.requires_grad or id(param) in seen:
            continue  # tied weights appear once
        seen.add(id(param))
        if param.ndim >= 2 and id(param) not in embedding_params:
            decay.append(param)
        else:
            no_decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def total_steps_for(n_examples: int, hp: FinetuneHyperparams) -> int:
    """Optimizer steps of the whole run; fractional epochs take a prefix of the last epoch."""
    return max(1, math.ceil(hp.epochs * batches_per_epoch(n_examples, hp.batch_size)))


# Settings that change how much memory a step takes but not the update it makes (up to float rounding):
# a run that ran out of memory can resume from its checkpoint with them changed.
MEMORY_ONLY_FIELDS = ("gradient_checkpointing", "max_tokens_per_step")
# Settings of when checkpoints are written, which never change the result either.
RESUME_NEUTRAL_FIELDS = MEMORY_ONLY_FIELDS + ("checkpoint_every", "checkpoint_every_minutes")


def run_fingerprint(hp: FinetuneHyperparams, encoded: EncodedExamples, model: torch.nn.Module) -> str:
    """Hash of what makes a checkpoint valid for this run (hyper-parameters except those that change
    only memory or checkpoint timing, data, parameter shapes)."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in asdict(hp).items() if k not in RESUME_NEUTRAL_FIELDS}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(np.asarray(encoded.labels).tobytes())
    for ids in encoded.input_ids:
        digest.update(np.asarray(ids, dtype=np.int64).tobytes())
    for name, param in model.state_dict().items():
        digest.update(f"{name}{tuple(param.shape)}".encode())
    return digest.hexdigest()[:16]


def train_classifier(model: torch.nn.Module, encoded: EncodedExamples, hp: FinetuneHyperparams, *,
                     pad_token_id: int, checkpoint_dir: str | Path, threads: int | None = None,
                     stop_after_steps: int | None = None, progress: bool = True) -> FinetuneResult:
    """Fine-tune ``model`` in place on ``encoded``; resume from ``checkpoint_dir`` if it holds one.

    ``stop_after_steps`` ends the job early after that many optimizer steps in total (counting
    steps of earlier attempts), writing a checkpoint and returning ``completed=False``: the way
    to split a long run across jobs, and how the tests interrupt a run.
    """
    if threads:
        torch.set_num_threads(int(threads))
    if len(encoded) == 0:
        raise ValueError("training set is empty")
    device = resolve_device(hp.device)
    torch.manual_seed(hp.seed)
    # Before anything is allocated on the device: on CUDA a run that cannot fit stops here, not hours later.
    memory_plan = plan_finetune_memory(model, encoded, hp, device)
    model.to(device)
    if hp.gradient_checkpointing:
        set_activation_checkpointing(model, True)
    optimizer = torch.optim.AdamW(parameter_groups(model, hp.weight_decay), lr=hp.lr)
    total = total_steps_for(len(encoded), hp)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(round(hp.warmup_ratio * total)), total)
    fingerprint = run_fingerprint(hp, encoded, model)
    state = load_checkpoint(checkpoint_dir, model, optimizer, scheduler, fingerprint) or TrainingState(log_rows=[])
    if state.step:
        print(f"resumed from step {state.step} of {total} ({checkpoint_dir})", file=sys.stderr)

    n_batches = batches_per_epoch(len(encoded), hp.batch_size)
    bar = tqdm(total=total, initial=state.step, file=sys.stderr, disable=not progress,
               desc="fine-tune", unit="step", dynamic_ncols=True, mininterval=progress_interval_s(sys.stderr))
    window_loss, window_steps, window_tokens = state.window_loss, state.window_steps, state.window_tokens
    window_start = time.perf_counter()
    attempt_start = last_checkpoint = window_start
    model.train()
    try:
        while state.step < total:
            plan = plan_batches(encoded.lengths, hp.batch_size, hp.bucket_batches, hp.seed, state.epoch)
            while state.batch_index < n_batches and state.step < total:
                batch = collate(encoded, plan[state.batch_index], pad_token_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                loss = optimizer_step(model, optimizer, batch, hp, device, state.step + 1)
                lr_used = scheduler.get_last_lr()[0]
                scheduler.step()
                state.step += 1
                state.batch_index += 1
                tokens = int(batch["attention_mask"].sum())
                state.tokens += tokens
                window_loss, window_steps, window_tokens = window_loss + loss, window_steps + 1, window_tokens + tokens
                bar.update(1)
                if state.step % hp.log_every == 0 or state.step == total:
                    now = time.perf_counter()
                    state.log_rows.append({
                        "step": state.step, "loss": window_loss / window_steps, "lr": float(lr_used),
                        "tokens_per_s": window_tokens / max(now - window_start, 1e-9),
                        "elapsed_s": state.elapsed_s + (now - attempt_start)})
                    bar.set_postfix(loss=f"{window_loss / window_steps:.4f}")
                    window_loss, window_steps, window_tokens, window_start = 0.0, 0, 0, now
                stopping = stop_after_steps is not None and state.step >= stop_after_steps
                if state.step < total and (checkpoint_due(hp, state.step, last_checkpoint) or stopping):
                    state.window_loss, state.window_steps, state.window_tokens = window_loss, window_steps, window_tokens
                    _checkpoint(checkpoint_dir, model, optimizer, scheduler, state, fingerprint,
                                attempt_start, n_batches)
                    last_checkpoint = time.perf_counter()
                if stopping and state.step < total:
                    return FinetuneResult(False, state.step, total, pd.DataFrame(state.log_rows, columns=LOG_COLUMNS),
                                          state.tokens, memory_plan)
            if state.batch_index >= n_batches:
                state.epoch, state.batch_index = state.epoch + 1, 0
    finally:
        bar.close()
        if hp.gradient_checkpointing:
            set_activation_checkpointing(model, False)  # leave the model as it came (e.g. for evaluation)
    return FinetuneResult(True, state.step, total, pd.DataFrame(state.log_rows, columns=LOG_COLUMNS), state.tokens,
                          memory_plan)


def plan_finetune_memory(model: torch.nn.Module, encoded: EncodedExamples, hp: FinetuneHyperparams,
                         device: torch.device) -> dict[str, Any] | None:
    """The run's memory plan (``kernels.training.memory``), logged to stderr; on CUDA it raises
    ``MemoryPlanError`` when the estimate exceeds the device's free memory. None for a model that is not
    one of kernels.models' families (the planner measures their decoder blocks)."""
    if not can_plan(model):
        print(f"memory plan: not available for {type(model).__name__}", file=sys.stderr)
        return None
    longest = int(min(encoded.lengths.max(), hp.max_length))
    try:
        plan = plan_memory(model, batch_size=hp.batch_size, longest=longest,
                           max_tokens_per_step=hp.max_tokens_per_step,
                           gradient_checkpointing=hp.gradient_checkpointing, dtype=hp.dtype, device=str(device))
    except FamilyError as error:  # a family whose blocks cannot run here (fla's on a plain CPU)
        print(f"memory plan: not available for {type(model).__name__}: {error}", file=sys.stderr)
        return None
    try:
        plan = check_device_memory(plan, device, hp.max_length)
    finally:
        log_plan(plan)
    return plan


def checkpoint_due(hp: FinetuneHyperparams, step: int, last_checkpoint: float) -> bool:
    """A checkpoint every ``checkpoint_every`` steps, and once ``checkpoint_every_minutes`` have passed."""
    if step % hp.checkpoint_every == 0:
        return True
    minutes = hp.checkpoint_every_minutes
    return minutes is not None and time.perf_counter() - last_checkpoint >= 60 * minutes


def _checkpoint(checkpoint_dir, model, optimizer, scheduler, state: TrainingState, fingerprint: str,
                attempt_start: float, n_batches: int) -> None:
    # Store the position of the NEXT batch (rolling over to the next epoch) and the time so far.
    epoch, batch_index = state.epoch, state.batch_index
    if batch_index >= n_batches:
        epoch, batch_index = epoch + 1, 0
    elapsed = state.elapsed_s + (time.perf_counter() - attempt_start)
    snapshot = TrainingState(step=state.step, epoch=epoch, batch_index=batch_index, elapsed_s=elapsed,
                             tokens=state.tokens, log_rows=state.log_rows, window_loss=state.window_loss,
                             window_steps=state.window_steps, window_tokens=state.window_tokens)
    save_checkpoint(checkpoint_dir, model, optimizer, scheduler, snapshot, fingerprint)


def split_batch(batch: dict[str, torch.Tensor], max_tokens: int | None) -> list[dict[str, torch.Tensor]]:
    """Micro-batches of at most ``max_tokens`` *padded* tokens (rows x the micro-batch's longest row).

    Padded tokens, not real ones, because every position of the padded tensor is computed and its
    activations kept: the padded size is what the memory follows. Rows are grouped longest first, so
    rows of similar length share a micro-batch, and each micro-batch is cut to its own longest row
    (right padding: the columns dropped are padding only). A batch within the budget comes back as
    it is, so a budget that is never reached changes nothing. A row longer than the budget runs alone.
    """
    mask = batch["attention_mask"]
    rows, width = mask.shape
    if max_tokens is None or rows * width <= max_tokens:
        return [batch]
    lengths = mask.sum(dim=1).tolist()
    order = sorted(range(rows), key=lambda row: -lengths[row])  # stable: ties keep the batch's order
    groups: list[list[int]] = []
    for row in order:
        # the group's first row is its longest; the new row is never longer
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= max_tokens:
            groups[-1].append(row)
        else:
            groups.append([row])
    micro = []
    for group in groups:
        index = torch.as_tensor(group, device=mask.device)
        longest = int(lengths[group[0]])
        micro.append({key: (value[index, :longest] if value.dim() == 2 else value[index])
                      for key, value in batch.items()})
    return micro


def optimizer_step(model, optimizer, batch, hp: FinetuneHyperparams, device, step: int) -> float:
    """One AdamW update on ``batch``; returns the batch's mean loss.

    With ``hp.max_tokens_per_step`` the batch runs as micro-batches (``split_batch``) whose losses are
    weighted by their share of the rows, so the summed gradients, and the update, are those of the full
    batch's mean loss (up to float rounding); the effective batch stays ``batch_size``.
    """
    optimizer.zero_grad(set_to_none=True)
    micro_batches = split_batch(batch, hp.max_tokens_per_step)
    rows = batch["labels"].shape[0]
    total_loss = 0.0
    for micro in micro_batches:
        with autocast_context(device, hp.dtype):
            out = model(input_ids=micro["input_ids"], attention_mask=micro["attention_mask"], labels=micro["labels"])
        loss = out.loss
        if not torch.isfinite(loss.detach()).all():
            # Stop before the bad gradient touches the weights; the last checkpoint stays valid.
            raise FloatingPointError(f"non-finite training loss ({float(loss.detach())}) at step {step}; "
                                     "the last good checkpoint was kept")
        if len(micro_batches) > 1:
            loss = loss * (micro["labels"].shape[0] / rows)
        loss.backward()
        total_loss += float(loss.detach())
    if hp.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
    optimizer.step()
    return total_loss


INFO_FILE = "finetune_info.json"
SAVE_DTYPES = ("auto", "float32", "bfloat16")


def resolve_save_dtype(save_dtype: str | None, train_dtype: str) -> str:
    """dtype of the saved weights: ``auto`` (or None) = the training dtype, so a bf16 run writes bf16
    weights (half the disk of float32; the fp32 master copy only matters while training)."""
    choice = save_dtype or "auto"
    if choice not in SAVE_DTYPES:
        raise ValueError(f"finetune settings: invalid value for field 'save_dtype': {save_dtype!r} "
                         f"(expected one of {list(SAVE_DTYPES)})")
    return train_dtype if choice == "auto" else choice


def write_model_dir(model_dir: str | Path, model, tokenizer, log: pd.DataFrame, *, save_dtype: str = "float32",
                    info: dict | None = None) -> None:
    """Save config.json, model.safetensors (in ``save_dtype``), tokenizer files, train_log.csv and, when
    given, ``finetune_info.json`` (``info``), atomically.

    Everything is written into a temporary directory beside ``model_dir`` and each file is then
    moved into place with ``os.replace``, so no reader ever sees a half-written file.
    """
    target = Path(model_dir)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        # save_pretrained casts the state dict; the in-memory model keeps its fp32 master weights.
        model.save_pretrained(staging, safe_serialization=True, state_dict={
            name: tensor.to(getattr(torch, save_dtype)) if tensor.is_floating_point() else tensor
            for name, tensor in model.state_dict().items()})
        tokenizer.save_pretrained(staging)
        log.to_csv(staging / "train_log.csv", index=False, columns=LOG_COLUMNS)
        if info is not None:
            (staging / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n",
                                             encoding="utf-8")
        if not (staging / "model.safetensors").exists():
            raise RuntimeError(f"{staging}: save_pretrained did not write model.safetensors")
        for item in sorted(staging.iterdir()):
            if item.is_file():
                honour_umask(item)  # safetensors writes 0600: group members could not read the weights
                os.replace(item, target / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def finetune(model, tokenizer, train_frame: pd.DataFrame, hp: FinetuneHyperparams, *, model_dir: str | Path,
             checkpoint_dir: str | Path, threads: int | None = None, stop_after_steps: int | None = None,
             progress: bool = True, source: str = "train", save_dtype: str = "auto",
             info: dict | None = None, checkpoint_prune_parents: int = 0) -> FinetuneResult:
    """Encode ``train_frame`` (DESIGN.md schema), train, write the model dir, drop the checkpoint.

    ``info`` (what ran: kernels, checkpoint loading) is completed with the run's own record (steps,
    tokens, dtypes, memory plan) and written as ``finetune_info.json`` in the model dir. Once it is
    written the checkpoint goes, with up to ``checkpoint_prune_parents`` parents that it leaves empty.
    """
    save_dtype = resolve_save_dtype(save_dtype, hp.dtype)
    if threads:
        torch.set_num_threads(int(threads))
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError(f"tokenizer of {model_dir} has no pad token")
    labels = train_frame["label"] if "label" in train_frame.columns else None
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    if labels is not None and num_labels is not None and len(labels) and int(labels.max()) >= num_labels:
        raise ValueError(f"{source}: field 'label' has value {int(labels.max())} but the model has "
                         f"{num_labels} labels")
    encoded = encode_examples(tokenizer, train_frame, hp.max_length, source=source)
    calls_before = fla_kernel_calls()
    result = train_classifier(model, encoded, hp, pad_token_id=pad_id, checkpoint_dir=checkpoint_dir,
                              threads=threads, stop_after_steps=stop_after_steps, progress=progress)
    if result.completed:
        model.to("cpu")
        record = {**(info or {}), "train_dtype": hp.dtype, "save_dtype": save_dtype, "steps": result.steps,
                  "examples": len(encoded), "tokens": result.tokens,
                  "memory_plan": getattr(result, "memory_plan", None)}
        if "provenance" in record:  # calls of fla's kernels by this run's training steps: proof that they ran
            record["provenance"] = {**record["provenance"], **fla_call_record(calls_before)}
        write_model_dir(model_dir, model, tokenizer, result.log, save_dtype=save_dtype, info=record)
        remove_checkpoint(checkpoint_dir, prune_parents=checkpoint_prune_parents)
    return result
