"""Fine-tuning compute of a workflow config: GPU-hours from FLOPs per token at a stated MFU.

``python -m kernels.training.compute config/config.yaml config/paper.yaml config/zoo.yaml`` prints one JSON
object: per model its training FLOPs per token and GPU-hours, and the total, for

    GPU-hours = tokens x train FLOPs per token / (peak FLOP/s x MFU) / 3600

- tokens: per task, the GLUE training examples (:data:`GLUE_TRAIN_EXAMPLES`, the sizes of the HF dataset cards,
  capped by ``data.max_train_examples``) x ``finetune.epochs`` x seeds, each example counted at
  ``finetune.max_length`` tokens: an upper bound (length-bucketed batches pad only to their longest example,
  and GLUE sentences are mostly far shorter than 256 tokens);
- train FLOPs per token: the family's analytic formula (kernels.profiling.flops, 3 x forward, attention over the
  causal mean context) where it has one; otherwise ``6 x`` the weights of every ``nn.Linear`` of the classifier
  (2 FLOPs per multiply-add, forward + backward = 3 x forward), counted on the meta device: the dense matmuls,
  without recurrences, convolutions and attention scores (``method`` says which);
- peak and MFU are stated on the command line (default: 989 TFLOP/s, the dense bf16 peak of an H100 / H200
  SXM, at 30 % MFU). No 1.3B fine-tuning step of these models has been measured yet; once one is, its
  measured tokens/s replaces the MFU assumption.

Evaluation, attacks and profiling are not included (fine-tuning dominates).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kernels.training.disk import UnrecordedCheckpoint, merged_config, model_fields

# Training examples per GLUE task (the HF dataset cards of nyu-mll/glue).
GLUE_TRAIN_EXAMPLES = {"sst2": 67349, "qqp": 363846, "mnli": 392702, "qnli": 104743, "rte": 2490}
H100_BF16_DENSE_TFLOPS = 989.0
DEFAULT_MFU = 0.30


def train_tokens(config: dict[str, Any]) -> int:
    """Padded training tokens of one model over the config's tasks, seeds and epochs (see module docstring)."""
    cap = (config.get("data") or {}).get("max_train_examples")
    finetune = config["finetune"]
    examples = sum(min(GLUE_TRAIN_EXAMPLES[t], cap) if cap else GLUE_TRAIN_EXAMPLES[t] for t in config["tasks"])
    return int(examples * float(finetune["epochs"]) * len(config["seeds"]) * int(finetune["max_length"]))


def train_flops_per_token(family_name: str, fields: dict[str, Any], max_length: int) -> tuple[float, str]:
    """(training FLOPs per token, how they were obtained) for a model of ``family_name`` with config ``fields``."""
    import torch

    from kernels.families import family as family_named
    from kernels.profiling.flops import flops_per_token

    family = family_named(family_name)
    if family.declaration.kind == "native":
        flops = flops_per_token(family_name, family.config_of(fields), "train", max_length, 0)
        if flops is not None:
            return flops, "formula"
    model = family.meta_classifier(fields)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 6.0 * linear, "6 x linear weights"


def compute_plan(config: dict[str, Any], peak_tflops: float = H100_BF16_DENSE_TFLOPS,
                 mfu: float = DEFAULT_MFU) -> dict[str, Any]:
    names = config.get("selected_models") or list(config["models"])
    tokens = train_tokens(config)
    rows, uncounted, total = {}, [], 0.0
    for name in names:
        model = config["models"][name]
        try:
            fields = model_fields(model, config["tokenizer"]["vocab_size"])
        except UnrecordedCheckpoint:
            uncounted.append(name)
            continue
        flops, method = train_flops_per_token(model["family"], fields, int(config["finetune"]["max_length"]))
        hours = tokens * flops / (peak_tflops * 1e12 * mfu) / 3600
        rows[name] = {"train_flops_per_token": flops, "method": method, "gpu_hours": round(hours, 1)}
        total += hours
    return {"tokens_per_model": tokens, "peak_tflops": peak_tflops, "mfu": mfu, "models": rows,
            "total_gpu_hours": round(total, 1), "uncounted_models": uncounted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help="config files, layered in order")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS)
    parser.add_argument("--mfu", type=float, default=DEFAULT_MFU)
    args = parser.parse_args()
    print(json.dumps(compute_plan(merged_config([Path(p) for p in args.configs]), args.peak_tflops, args.mfu)))


if __name__ == "__main__":
    main()
