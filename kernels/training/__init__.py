"""Fine-tuning of sequence classifiers: bucketed dynamic padding, AdamW with warm-up and linear
decay, gradient clipping, resumable atomic checkpoints (see ``loop`` for the details)."""

from kernels.training.batching import (EncodedExamples, collate, encode_examples, pad_batch,
                                       plan_batches)
from kernels.training.checkpoint import load_checkpoint, save_checkpoint
from kernels.training.loop import (LOG_COLUMNS, FinetuneHyperparams, FinetuneResult, finetune,
                                   parameter_groups, train_classifier, write_model_dir)

__all__ = [
    "EncodedExamples", "collate", "encode_examples", "pad_batch", "plan_batches",
    "load_checkpoint", "save_checkpoint", "LOG_COLUMNS", "FinetuneHyperparams", "FinetuneResult",
    "finetune", "parameter_groups", "train_classifier", "write_model_dir",
]
