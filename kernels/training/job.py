"""One fine-tuning job of the workflow: build or load the classifier and tokenizer, train on a
GLUE train parquet, write ``results/models/{model}/{task}/seed{seed}/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from kernels.pretrained import local_checkpoint_dir
from kernels.training.loop import FinetuneHyperparams, FinetuneResult, finetune, resolve_device


def load_job_tokenizer(tokenizer_file: str | Path | None, pretrained: str | None, revision: str | None):
    """The from-scratch tokenizer (the directory of ``tokenizer_file``) or the pretrained one."""
    from kernels.tokenization import load_tokenizer

    if pretrained:
        return load_tokenizer(pretrained, revision=revision)
    if tokenizer_file is None:
        raise ValueError("a from-scratch model needs the tokenizer input (results/tokenizer/tokenizer.json)")
    return load_tokenizer(Path(tokenizer_file).parent)


def make_classifier(family: str, arch: dict[str, Any] | None, pretrained: str | None, revision: str | None,
                    tokenizer, num_labels: int, seed: int, allow_pickle: bool = False):
    """A seeded from-scratch classifier, or a pretrained backbone with a new classification head."""
    import torch

    from kernels.families import family as family_named

    registry = family_named(family)
    if pretrained:
        # The new head is initialised from the torch RNG: seed it so runs are reproducible.
        torch.manual_seed(seed)
        return registry.load_pretrained(pretrained, num_labels=num_labels, revision=revision,
                                        allow_pickle=allow_pickle,
                                        config_overrides={"pad_token_id": tokenizer.pad_token_id})
    return registry.build(dict(arch or {}), vocab_size=len(tokenizer), num_labels=num_labels,
                          pad_token_id=tokenizer.pad_token_id, seed=seed,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)


def finetune_job(*, train_path: str | Path, tokenizer_file: str | Path | None, model_dir: str | Path,
                 family: str, arch: dict[str, Any] | None, pretrained: str | None, revision: str | None,
                 hp: dict[str, Any], num_labels: int, checkpoint_dir: str | Path, seed: int,
                 threads: int | None = None, stop_after_steps: int | None = None,
                 progress: bool = True, allow_pickle: bool = False, require_fla: bool = False,
                 checkpoint_prune_parents: int = 0) -> FinetuneResult:
    """Fine-tune and write the model dir, with ``finetune_info.json`` recording which kernels ran and, for
    a pretrained backbone, what the checkpoint provided (every backbone tensor; only the head is new)."""
    import sys

    from kernels.families import family as family_named
    from kernels.ops.backend import kernel_provenance
    from kernels.ops.backend import require_fla as check_fla

    settings = dict(hp)
    save_dtype = settings.pop("save_dtype", "auto")  # an output setting, not a training hyper-parameter
    hyper = FinetuneHyperparams.from_dict({**settings, "seed": int(seed)}, source="finetune settings (hp)")
    device = resolve_device(hyper.device)
    if require_fla:
        check_fla(device)  # before any data or weights are read: fail in seconds, not hours
    frame = pd.read_parquet(train_path)
    # one local copy for the tokenizer and the weights (a hub id fails fast when the hub cannot answer)
    source = local_checkpoint_dir(pretrained, revision, allow_pickle) if pretrained else None
    tokenizer = load_job_tokenizer(tokenizer_file, source, revision)
    model = make_classifier(family, arch, source, revision, tokenizer, int(num_labels), int(seed),
                            allow_pickle=allow_pickle)
    registry = family_named(family)
    if hyper.gradient_checkpointing:  # before any step: a backbone without it fails now, naming the key
        registry.check_checkpointing(model)
    info = {"family": family, "pretrained": pretrained, "revision": revision,
            "provenance": kernel_provenance(device), "implementation": registry.implementation(model, device),
            "checkpoint": getattr(model, "checkpoint_loading_info", None)}
    if info["checkpoint"] is not None:
        loaded = info["checkpoint"]
        print(f"checkpoint {loaded['source']}: loaded {loaded['loaded_tensors']} backbone tensors "
              f"({loaded['loaded_parameters']:,} parameters); newly initialised: {loaded['new_tensors']}; "
              f"unused checkpoint keys: {loaded['unused_checkpoint_keys']}", file=sys.stderr)
    print(f"kernels: {info['provenance']}", file=sys.stderr)
    return finetune(model, tokenizer, frame, hyper, model_dir=model_dir, checkpoint_dir=checkpoint_dir,
                    threads=threads, stop_after_steps=stop_after_steps, progress=progress,
                    source=str(train_path), save_dtype=save_dtype, info=info,
                    checkpoint_prune_parents=checkpoint_prune_parents)
