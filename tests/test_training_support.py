"""Shared helpers for the training/evaluation tests (no tests here): real English sentences in the
DESIGN.md schema, a small word-level tokenizer with the project's pair template, and a tiny real
transformers model to train."""

from __future__ import annotations

import itertools
import random

import pandas as pd
import torch

POSITIVE = ["wonderful", "moving", "brilliant", "charming", "delightful", "gripping", "heartfelt", "superb"]
NEGATIVE = ["dull", "tedious", "clumsy", "boring", "shallow", "awful", "lifeless", "messy"]
SUBJECTS = ["the film", "this movie", "the story", "the acting", "the script", "the soundtrack",
            "the ending", "the cast", "the direction", "the dialogue"]
TAILS = ["from start to finish", "in every scene", "despite its length", "for most of its running time",
         "", "and the audience knows it", "even on a second viewing"]


def sentiment_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """An SST-2-like single-sentence task: label 1 when the adjective is positive."""
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        label = idx % 2
        adjective = rng.choice(POSITIVE if label else NEGATIVE)
        subject, tail = rng.choice(SUBJECTS), rng.choice(TAILS)
        extra = rng.choice(["", " , quite honestly ,", " , as expected ,"])
        text = f"{subject}{extra} is {adjective} {tail}".strip()
        rows.append({"idx": idx, "text_a": text, "text_b": None, "label": label})
    return pd.DataFrame(rows)


def entailment_frame(n: int = 120, seed: int = 1) -> pd.DataFrame:
    """An RTE-like pair task: label 0 (entailment) when the hypothesis repeats the premise's adjective."""
    rng = random.Random(seed)
    adjectives = POSITIVE + NEGATIVE
    rows = []
    for idx in range(n):
        subject = rng.choice(SUBJECTS)
        adjective = rng.choice(adjectives)
        label = idx % 2
        other = adjective if label == 0 else rng.choice([a for a in adjectives if a != adjective])
        premise = f"critics agreed that {subject} was {adjective} {rng.choice(TAILS)}".strip()
        rows.append({"idx": idx, "text_a": premise, "text_b": f"{subject} was {other}", "label": label})
    return pd.DataFrame(rows)


def make_tokenizer():
    """The project's byte-level BPE tokenizer trained on the test sentences (pairs: ``A </s> B </s>``)."""
    from kernels.tokenization import train_tokenizer

    texts = list(itertools.chain(sentiment_frame()["text_a"], entailment_frame()["text_a"],
                                 entailment_frame()["text_b"]))
    return train_tokenizer(texts, vocab_size=400, min_frequency=1)


def tiny_llama(tokenizer, num_labels: int = 2, seed: int = 0):
    """A real 2-layer LlamaForSequenceClassification, small enough to train in seconds on CPU."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                      num_labels=num_labels, pad_token_id=tokenizer.pad_token_id)
    return LlamaForSequenceClassification(cfg)


def finetune_hp(**overrides):
    """Hyper-parameters of the training tests: small and fast, overridden by ``overrides``."""
    from kernels.training import FinetuneHyperparams

    values = dict(epochs=2, batch_size=16, lr=3e-3, weight_decay=0.01, warmup_ratio=0.1, max_grad_norm=1.0,
                  max_length=48, bucket_batches=4, checkpoint_every=5, log_every=4, seed=0)
    values.update(overrides)
    return FinetuneHyperparams(**values)
