"""Shared pieces of the attack tests (no tests here): the test tokenizer and a briefly fine-tuned victim,
sanity models whose decision is known (a keyword model for 2 or 3 classes, a token-count model), the
synonym source of the tests and a plain Levenshtein."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from kernels.attacks.resources import DEFAULT_DIR, load_resources
from kernels.attacks.runner import example_rng
from kernels.attacks.victim import ClassifierVictim, whole_word_vocabulary
from kernels.attacks.wordnet import Synonym, SynonymTable, read_synonym_table
from kernels.models import build_classifier
from test_training_support import entailment_frame, sentiment_frame

KEYWORD = "superb"
# WordNet 3.0's synonyms (nltk's synsets rule, kernels.attacks.wordnet.reader_synonyms) of the four words of the
# test sentences that the bundled table (the demo's validation words) does not list;
# test_attacks_words.py::test_test_synonyms_are_wordnets checks them against WordNet wherever it is installed.
EXTRA_WORDNET = {
    "superb": (Synonym("brilliant", "a"),),
    "messy": (Synonym("mussy", "a"),),
    "shallow": (Synonym("shoal", "n"), Synonym("shoal", "v")),
    "wonderful": tuple(Synonym(w, "a") for w in ("fantastic", "grand", "howling", "marvellous", "marvelous",
                                                 "rattling", "terrific", "tremendous", "wondrous")),
}
_BUNDLED = read_synonym_table(DEFAULT_DIR / "wordnet_synonyms.tsv")
TEST_SYNONYMS = SynonymTable({**_BUNDLED.entries, **EXTRA_WORDNET}, "bundled table + 4 test words")
RESOURCES = dataclasses.replace(load_resources(), synonym_source=TEST_SYNONYMS)


def training_texts() -> list[str]:
    return [*sentiment_frame()["text_a"], *entailment_frame()["text_a"], *entailment_frame()["text_b"]]


@pytest.fixture(scope="module")
def tokenizer():
    """The project's byte-level BPE trained on the test sentences, large enough that every adjective of
    the test tasks (the keyword among them) is one whole-word token."""
    from kernels.tokenization import train_tokenizer

    return train_tokenizer(training_texts(), vocab_size=500, min_frequency=1)


@pytest.fixture(scope="module")
def tiny_victim(tokenizer, tmp_path_factory):
    """A tiny Transformer++ briefly fine-tuned on the test sentiment task (untrained, it answers one class)."""
    from kernels.training import FinetuneHyperparams, train_classifier
    from kernels.training.batching import encode_examples

    arch = {"hidden_size": 32, "num_hidden_layers": 1, "num_heads": 2}
    model = build_classifier("transformer_pp", arch, vocab_size=len(tokenizer), num_labels=2,
                             pad_token_id=tokenizer.pad_token_id, seed=3)
    hp = FinetuneHyperparams(epochs=2, batch_size=16, lr=3e-3, max_length=64, seed=0)
    train_classifier(model, encode_examples(tokenizer, sentiment_frame(160, seed=1), 64), hp,
                     pad_token_id=tokenizer.pad_token_id, checkpoint_dir=tmp_path_factory.mktemp("ckpt"),
                     progress=False)
    return ClassifierVictim(model, tokenizer, max_length=64, batch_size=32)


class KeywordClassifier(torch.nn.Module):
    """Predicts class 1 iff one of ``keyword_ids`` is in the input: its embeddings' first coordinate is 1
    for the keywords and 0 otherwise, and the logit margin is 10 * min(1, sum over tokens of it) - 5 (a sum,
    so that the gradient reaches every position). ``num_labels=3``: logits (0.4, 0, 0) without the keyword
    (class 0 wins with p = 0.43 < 0.5) and (0, 2, 0) with it (class 1)."""

    def __init__(self, vocab_size: int, keyword_ids: list[int], constant: int | None = None, num_labels: int = 2):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(vocab_size, 8, generator=generator)
        weight[:, 0] = 0.0
        weight[keyword_ids, 0] = 1.0
        self.embeddings = torch.nn.Embedding.from_pretrained(weight, freeze=False)
        self.constant = constant
        self.num_labels = num_labels

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids, attention_mask=None, **unused):
        hidden = self.embeddings(input_ids)
        hit = torch.clamp((hidden[..., 0] * attention_mask).sum(dim=1), max=1.0)
        if self.num_labels == 3:
            logits = torch.stack([0.4 * (1 - hit), 2.0 * hit, 0 * hit], dim=-1)
            return SimpleNamespace(logits=logits)
        margin = 10 * hit - 5
        if self.constant is not None:  # always the same class (kept differentiable for the white-box recipes)
            margin = 0 * margin + (5.0 if self.constant == 1 else -5.0)
        return SimpleNamespace(logits=torch.stack([-margin, margin], dim=-1))


class TokenCountClassifier(torch.nn.Module):
    """Always class 1, less sure the more tokens the input has: every edit that splits a word into more
    tokens raises the goal score, none ever flips the label (the attack runs into its constraints)."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.embeddings = torch.nn.Embedding(vocab_size, 4)

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids, attention_mask=None, **unused):
        hidden = self.embeddings(input_ids)
        tokens = (attention_mask.float() + 0 * hidden[..., 0]).sum(dim=1)
        margin = 3.0 - 0.01 * tokens  # > 0 below 300 tokens
        return SimpleNamespace(logits=torch.stack([-margin, margin], dim=-1))


def keyword_id(tokenizer, word: str = KEYWORD) -> int:
    ids, words = whole_word_vocabulary(tokenizer)
    return int(ids[words.index(word)])


def run_lines(attack, frame, seed=0):
    lines = []
    for _, row in frame.iterrows():
        text_b = None if "text_b" not in row or pd.isna(row["text_b"]) else row["text_b"]
        outcome = attack.attack(row["text_a"], text_b, int(row["label"]), example_rng(seed, row["idx"]))
        lines.append((row, outcome))
    return lines


def frame_of(texts, labels, text_b=None) -> pd.DataFrame:
    return pd.DataFrame({"idx": range(len(texts)), "text_a": texts,
                         "text_b": text_b if text_b is not None else [None] * len(texts), "label": labels})


def plain_levenshtein(a: str, b: str) -> int:
    """The textbook dynamic programme, nothing skipped."""
    table = np.arange(len(b) + 1)
    for i, ca in enumerate(a, 1):
        prev, table[0] = table.copy(), i
        for j, cb in enumerate(b, 1):
            table[j] = min(prev[j] + 1, table[j - 1] + 1, prev[j - 1] + (ca != cb))
    return int(table[-1])


def changed_words(outcome):
    text = outcome.final.text
    return [(i, o, n) for i, (o, n) in enumerate(zip(text.original_words, text.words)) if o != n]
