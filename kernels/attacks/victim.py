"""The attacked classifier seen through the evaluation pipeline.

Inputs are encoded by ``kernels.tokenization.classification_encoder`` (the encoder that
``kernels.training.batching.encode_examples`` uses for training and evaluation: same template, same
truncation), padded on the right by ``pad_batch`` and run under the fine-tuning autocast dtype, so an
attacked text is scored exactly as the evaluation stage would score it. The victim only needs a
``forward(input_ids, attention_mask)`` returning ``.logits`` and ``get_input_embeddings()`` (for the
white-box recipes), so any module with that interface can stand in for the fine-tuned models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kernels.tokenization import classification_encoder
from kernels.training.batching import pad_batch
from kernels.training.loop import autocast_context, resolve_device


@dataclass(frozen=True)
class TokenizedInput:
    ids: list[int]
    offsets: list[tuple[int, int]]
    sequence_ids: list[int | None]

    def tokens_overlapping(self, field: int, start: int, end: int) -> list[int]:
        """Positions of the tokens of ``field`` whose characters overlap ``[start, end)``."""
        return [i for i, (seq, (s, e)) in enumerate(zip(self.sequence_ids, self.offsets))
                if seq == field and s < end and e > start and e > s]


class ClassifierVictim:
    def __init__(self, model, tokenizer, *, max_length: int, batch_size: int = 64, device: str = "cpu",
                 dtype: str = "float32"):
        if tokenizer.pad_token_id is None:
            raise ValueError("tokenizer has no pad token")
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.device = resolve_device(device)
        self.dtype = dtype
        self.encoder = classification_encoder(tokenizer, self.max_length)
        self.model.to(self.device)
        self.model.eval()

    @property
    def unk_token(self) -> str | None:
        """The tokenizer's own unknown token (one token in its vocabulary), or None when it has none."""
        return self.tokenizer.unk_token

    def tokenize(self, pairs: list[tuple[str, str | None]]) -> list[TokenizedInput]:
        if not pairs:
            return []
        if pairs[0][1] is None:
            encodings = self.encoder.encode_batch([a for a, _ in pairs])
        else:
            encodings = self.encoder.encode_batch([(a, b) for a, b in pairs])
        return [TokenizedInput(list(e.ids), list(e.offsets), list(e.sequence_ids)) for e in encodings]

    def _logits(self, ids: list[list[int]], grad_embeddings: bool = False):
        padded, mask = pad_batch(ids, self.tokenizer.pad_token_id)
        padded, mask = padded.to(self.device), mask.to(self.device)
        with autocast_context(self.device, self.dtype):
            return self.model(input_ids=padded, attention_mask=mask).logits.float()

    @torch.no_grad()
    def probabilities(self, pairs: list[tuple[str, str | None]]) -> np.ndarray:
        """Softmax class probabilities ``[len(pairs), num_labels]``, batched by length."""
        ids = [t.ids for t in self.tokenize(pairs)]
        out: np.ndarray | None = None
        order = np.argsort([len(i) for i in ids], kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            probs = torch.softmax(self._logits([ids[i] for i in rows]), dim=-1).cpu().numpy()
            if out is None:
                out = np.empty((len(ids), probs.shape[1]), dtype=np.float64)
            out[rows] = probs
        return out if out is not None else np.empty((0, 0))

    def embedding_table(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight.detach().float()

    def embedding_gradients(self, tokenized: list[TokenizedInput], targets: list[int]) -> list[np.ndarray]:
        """Gradient of the cross-entropy toward ``targets`` w.r.t. each input embedding: ``[tokens, hidden]``
        per input. The embedding output is captured by a forward hook, so this works for every family."""
        captured = {}

        def keep(module, inputs, output):
            output.retain_grad()
            captured["embeddings"] = output

        handle = self.model.get_input_embeddings().register_forward_hook(keep)
        grads: list[np.ndarray] = []
        try:
            for start in range(0, len(tokenized), self.batch_size):
                chunk = tokenized[start:start + self.batch_size]
                with torch.enable_grad():
                    self.model.zero_grad(set_to_none=True)
                    logits = self._logits([t.ids for t in chunk])
                    target = torch.as_tensor(targets[start:start + len(chunk)], device=logits.device)
                    torch.nn.functional.cross_entropy(logits, target, reduction="sum").backward()
                grad = captured["embeddings"].grad.float().cpu().numpy()
                grads += [grad[row, :len(t.ids)] for row, t in enumerate(chunk)]
        finally:
            handle.remove()
            self.model.zero_grad(set_to_none=True)
        return grads


def whole_word_vocabulary(tokenizer, min_letters: int = 2) -> tuple[np.ndarray, list[str]]:
    """Token ids that are a whole word after a space (byte-level ``Ġword``, SentencePiece ``▁word``), letters
    only, and the words: the replacement candidates of the white-box recipes (never special tokens)."""
    special = set(tokenizer.all_special_ids)
    ids, words = [], []
    for token, token_id in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]):
        if token_id in special or token[:1] not in ("Ġ", "▁"):
            continue
        word = token[1:]
        if len(word) >= min_letters and word.isascii() and word.isalpha():
            ids.append(token_id)
            words.append(word)
    return np.asarray(ids, dtype=np.int64), words
