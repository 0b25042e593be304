"""Tokenisation of (text_a, text_b) examples and length-bucketed dynamic padding.

Padding every batch to ``max_length`` wastes most of the compute on short GLUE sentences, so
batches are built from examples of similar length and padded only to their own longest member,
on the RIGHT (the classifiers pool the last non-padding token, so padding must be on the right).

Bucketing: the example order is shuffled with a generator seeded by ``(seed, epoch)``; the
shuffled order is cut into mega-batches of ``bucket_batches * batch_size`` examples, each
mega-batch is sorted by length and cut into batches, and the order of all batches is shuffled
again. Because the plan depends only on ``(seed, epoch)`` and the lengths, a resumed run finds
the same batches from the saved (epoch, batch index) alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from kernels.tokenization import encode_for_classification

REQUIRED_COLUMNS = ("text_a", "label")


@dataclass(frozen=True)
class EncodedExamples:
    """Token ids (unpadded) and labels of a list of examples, in the frame's row order."""

    input_ids: list[list[int]]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self))


def check_columns(frame: pd.DataFrame, source: str, require_label: bool = True) -> None:
    """Raise a clear error naming ``source`` when a DESIGN.md column is missing or labels are bad."""
    needed = REQUIRED_COLUMNS if require_label else ("text_a",)
    missing = [col for col in needed if col not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; found {list(frame.columns)}")
    if frame["text_a"].isna().any():
        row = int(np.flatnonzero(frame["text_a"].isna().to_numpy())[0])
        raise ValueError(f"{source}: field 'text_a' is null in row {row}")
    if require_label and (frame["label"].isna().any() or (frame["label"] < 0).any()):
        raise ValueError(f"{source}: field 'label' has null or negative values")


def encode_examples(tokenizer, frame: pd.DataFrame, max_length: int, source: str = "examples",
                    require_label: bool = True) -> EncodedExamples:
    """Tokenise single sentences or pairs (``text_b`` null means single), truncated, unpadded.

    Every tokenizer gets the same input template (``[BOS] A </s>``, ``[BOS] A </s> B </s>``; see
    ``kernels.tokenization``), so that the pooled token is always the final ``</s>`` and evaluation
    sees exactly what training saw.
    """
    check_columns(frame, source, require_label)
    text_a = frame["text_a"].astype(str).tolist()
    if "text_b" in frame.columns:
        text_b = [None if pd.isna(b) else str(b) for b in frame["text_b"].tolist()]
    else:
        text_b = [None] * len(text_a)
    ids: list[list[int] | None] = [None] * len(text_a)
    singles = [i for i, b in enumerate(text_b) if b is None]
    pairs = [i for i, b in enumerate(text_b) if b is not None]
    if singles:
        out = encode_for_classification(tokenizer, [text_a[i] for i in singles], None, max_length)
        for i, row in zip(singles, out):
            ids[i] = row
    if pairs:
        out = encode_for_classification(tokenizer, [text_a[i] for i in pairs], [text_b[i] for i in pairs],
                                        max_length)
        for i, row in zip(pairs, out):
            ids[i] = row
    empty = [i for i, row in enumerate(ids) if not row]
    if empty:
        raise ValueError(f"{source}: row {empty[0]} encodes to zero tokens")
    labels = (frame["label"].to_numpy(dtype=np.int64) if require_label and "label" in frame.columns
              else np.full(len(ids), -1, dtype=np.int64))
    return EncodedExamples(input_ids=ids, labels=labels)


def epoch_generator(seed: int, epoch: int) -> np.random.Generator:
    # One independent stream per (seed, epoch): the plan of epoch e never depends on how many
    # random numbers earlier epochs drew, which is what makes (epoch, batch index) enough to resume.
    return np.random.default_rng([int(seed), int(epoch)])


def plan_batches(lengths: Sequence[int] | np.ndarray, batch_size: int, bucket_batches: int,
                 seed: int, epoch: int) -> list[np.ndarray]:
    """Index arrays of one epoch's batches, bucketed by length (see module docstring)."""
    if batch_size < 1 or bucket_batches < 1:
        raise ValueError(f"batch_size and bucket_batches must be >= 1, got {batch_size}, {bucket_batches}")
    lengths = np.asarray(lengths)
    rng = epoch_generator(seed, epoch)
    order = rng.permutation(len(lengths))
    mega = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), mega):
        chunk = order[start:start + mega]
        # stable sort keeps the shuffled order among equal lengths, so ties stay random but seeded
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def batches_per_epoch(n_examples: int, batch_size: int) -> int:
    # Every mega-batch is a multiple of batch_size, so only the final one can leave a short batch.
    return -(-n_examples // batch_size)


def pad_batch(input_ids: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence of the batch: (input_ids, attention_mask), both int64."""
    longest = max(len(ids) for ids in input_ids)
    ids = torch.full((len(input_ids), longest), int(pad_token_id), dtype=torch.long)
    mask = torch.zeros((len(input_ids), longest), dtype=torch.long)
    for row, seq in enumerate(input_ids):
        ids[row, :len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    return ids, mask


def collate(encoded: EncodedExamples, indices: np.ndarray, pad_token_id: int) -> dict[str, torch.Tensor]:
    ids, mask = pad_batch([encoded.input_ids[i] for i in indices], pad_token_id)
    labels = torch.as_tensor(encoded.labels[indices], dtype=torch.long)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
