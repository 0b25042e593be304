"""Resumable training checkpoints, written atomically.

Layout of a checkpoint directory (given by the workflow, separate from the model output dir)::

    <checkpoint_dir>/
        latest.json            {"step": 200, "dir": "step-00000200", "fingerprint": "..."}
        step-00000200/
            model.safetensors  model weights (safetensors; shared tensors handled by save_model)
            state.pt           optimizer, scheduler, RNG states, data position, log rows, elapsed time

A new checkpoint is written completely into a fresh step directory first; only then is
``latest.json`` replaced (an atomic rename), and older step directories are removed afterwards.
A job killed at any moment therefore leaves ``latest.json`` pointing at a complete checkpoint.
``state.pt`` holds only plain Python values and tensors so it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from kernels import io
from kernels.io import write_json
from kernels.pretrained import safetensors_problem

LATEST = "latest.json"
WEIGHTS = "model.safetensors"
STATE = "state.pt"


@dataclass
class TrainingState:
    """Everything besides the model and optimizer that a resumed run needs."""

    step: int = 0            # optimizer steps done
    epoch: int = 0           # epoch of the next batch
    batch_index: int = 0     # index of the next batch within the epoch's plan
    elapsed_s: float = 0.0   # training wall time of the earlier attempts
    tokens: int = 0          # non-padding tokens seen so far
    log_rows: list | None = None
    # the log row under way: loss sum, steps and tokens since the last logged row, so a resumed
    # run logs the same mean loss as an uninterrupted one
    window_loss: float = 0.0
    window_steps: int = 0
    window_tokens: int = 0


def capture_rng_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(checkpoint_dir: str | Path, model, optimizer, scheduler, state: TrainingState,
                    fingerprint: str) -> Path:
    """Write a complete checkpoint for ``state.step`` and point ``latest.json`` at it."""
    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{state.step:08d}"
    target = root / name
    staging = root / f".{name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    safetensors.torch.save_model(model, str(staging / WEIGHTS))
    payload = {
        "fingerprint": fingerprint,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": capture_rng_state(),
        "step": state.step, "epoch": state.epoch, "batch_index": state.batch_index,
        "elapsed_s": float(state.elapsed_s), "tokens": int(state.tokens),
        "log_rows": list(state.log_rows or []),
        "window": [float(state.window_loss), int(state.window_steps), int(state.window_tokens)],
    }
    torch.save(payload, staging / STATE)
    if target.exists():  # a previous attempt died after writing this step but before latest.json
        shutil.rmtree(target)
    staging.rename(target)
    write_json(root / LATEST, {"step": state.step, "dir": name, "fingerprint": fingerprint})
    for old in root.iterdir():
        if old.is_dir() and old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(checkpoint_dir: str | Path, model, optimizer, scheduler,
                    fingerprint: str) -> TrainingState | None:
    """Restore model/optimizer/scheduler/RNG from the latest checkpoint; None when there is none.

    A checkpoint that cannot be read (a damaged ``latest.json``, a truncated ``model.safetensors``, an
    unreadable ``state.pt``) is moved aside with a warning naming it, and training starts from step 0:
    a damaged file never blocks the job. Both files are read and checked before anything is loaded into
    the model, so a damaged checkpoint never leaves half-restored weights behind."""
    root = Path(checkpoint_dir)
    pointer = root / LATEST
    if not pointer.exists():
        return None
    try:
        latest = json.loads(pointer.read_text(encoding="utf-8"))
        recorded, folder = latest.get("fingerprint"), root / latest["dir"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        io.set_aside(root, f"{pointer.name} cannot be read: {type(err).__name__}: {err}")
        return None
    if recorded != fingerprint:
        set_aside(root, recorded, fingerprint)
        return None
    problem = safetensors_problem(folder / WEIGHTS)
    if problem is not None:
        io.set_aside(root, f"{folder / WEIGHTS}: {problem}")
        return None
    try:
        payload = torch.load(folder / STATE, weights_only=True, map_location="cpu")
        window_loss, window_steps, window_tokens = payload["window"]
    except Exception as err:  # noqa: BLE001 - any unreadable state: set the checkpoint aside, start over
        from kernels.models.common import unpickling_refusal

        reason = unpickling_refusal(err) if isinstance(err, pickle.UnpicklingError) else io.failure_cause(err)
        io.set_aside(root, f"{folder / STATE} cannot be read: {reason}")
        return None
    safetensors.torch.load_model(model, str(folder / WEIGHTS), strict=True)  # raises on any mismatch
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    restore_rng_state(payload["rng"])
    return TrainingState(step=int(payload["step"]), epoch=int(payload["epoch"]),
                         batch_index=int(payload["batch_index"]),
                         elapsed_s=float(payload["elapsed_s"]), tokens=int(payload["tokens"]),
                         log_rows=list(payload["log_rows"]), window_loss=float(window_loss),
                         window_steps=int(window_steps), window_tokens=int(window_tokens))


def set_aside(root: Path, old: str | None, new: str) -> Path:
    """Move a checkpoint of another training setup (changed data, hyper-parameters or model) out of the
    way, with a warning that says where it went: the run starts over without a manual step, and nothing
    is deleted that the user may still want."""
    target = root.with_name(f"{root.name}.stale-{old or 'unknown'}")
    if target.exists():
        shutil.rmtree(target)
    root.rename(target)
    print(f"warning: {root} holds a checkpoint of a different training setup (fingerprint {old!r}, this run "
          f"{new!r}); moved it to {target} and training starts from step 0", file=sys.stderr)
    return target


def remove_checkpoint(checkpoint_dir: str | Path, prune_parents: int = 0) -> None:
    """Delete a run's checkpoint directory, then up to ``prune_parents`` of its parents that it leaves
    empty (the workflow's ``results/checkpoints/{model}/{task}``), so no empty folders are left behind."""
    root = Path(checkpoint_dir)
    shutil.rmtree(root, ignore_errors=True)
    for parent in list(root.parents)[:prune_parents]:
        try:
            parent.rmdir()  # only succeeds when empty: a sibling run's checkpoint keeps its parents
        except OSError:
            break
