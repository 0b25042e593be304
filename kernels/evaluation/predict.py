"""Batch inference for sequence classifiers.

Examples are encoded exactly as in training (``kernels.training.batching.encode_examples``),
sorted by length so each batch is padded (on the right) only to its own longest member, and the
predictions are put back into the original row order. ``prob`` is the softmax probability of the
predicted class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from kernels.training.batching import EncodedExamples, encode_examples, pad_batch
from kernels.training.loop import autocast_context, resolve_device


@torch.no_grad()
def predict_encoded(model, encoded: EncodedExamples, *, pad_token_id: int, batch_size: int = 64,
                    device: str = "cpu", dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """(pred, prob) arrays in the order of ``encoded``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    model.to(dev)
    was_training = model.training
    model.eval()
    preds = np.empty(len(encoded), dtype=np.int64)
    probs = np.empty(len(encoded), dtype=np.float64)
    order = np.argsort(encoded.lengths, kind="stable")
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids, mask = pad_batch([encoded.input_ids[i] for i in rows], pad_token_id)
            with autocast_context(dev, dtype):
                logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
            p = torch.softmax(logits.float(), dim=-1)
            best = p.max(dim=-1)
            preds[rows] = best.indices.cpu().numpy()
            probs[rows] = best.values.cpu().numpy()
    finally:
        model.train(was_training)
    return preds, probs


def predict_frame(model, tokenizer, frame: pd.DataFrame, *, max_length: int, batch_size: int = 64,
                  device: str = "cpu", dtype: str = "float32", source: str = "examples") -> pd.DataFrame:
    """``idx, label, pred, prob`` for every row of a DESIGN.md frame, in the frame's order.

    ``dtype`` is the autocast dtype: the workflow passes the fine-tuning one, so the model computes
    as it did in training (BitLinear's quantisation in particular depends on the activation dtype).
    """
    if tokenizer.pad_token_id is None:
        raise ValueError("tokenizer has no pad token")
    encoded = encode_examples(tokenizer, frame, max_length, source=source)
    pred, prob = predict_encoded(model, encoded, pad_token_id=tokenizer.pad_token_id,
                                 batch_size=batch_size, device=device, dtype=dtype)
    return pd.DataFrame({"idx": frame["idx"].to_numpy(dtype=np.int64),
                         "label": frame["label"].to_numpy(dtype=np.int64),
                         "pred": pred, "prob": prob})
