"""The attack stage (kernels.attacks): constraints on every perturbed text, exact query counting with
cache hits, the query budget, seeding, and two sanity models (always one class; a keyword model)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from kernels.attacks.attack import FAILED, SKIPPED, SUCCESSFUL
from kernels.attacks.goal import UntargetedClassification
from kernels.attacks.recipes import RECIPES, AttackSettings, build_attack
from kernels.attacks.resources import load_resources
from kernels.attacks.runner import accuracy_vs_budget, example_rng, fingerprint, run_attack, summarize
from kernels.attacks.text import AttackedText
from kernels.attacks.victim import ClassifierVictim, whole_word_vocabulary
from kernels.attacks.whitebox import find_trigger
from kernels.models import build_classifier
from test_training_support import entailment_frame, sentiment_frame

torch.set_num_threads(1)
RESOURCES = load_resources()
KEYWORD = "superb"


@pytest.fixture(scope="module")
def tokenizer():
    """The project's byte-level BPE trained on the test sentences, large enough that every adjective of
    the test tasks (the keyword among them) is one whole-word token."""
    from kernels.tokenization import train_tokenizer

    texts = [*sentiment_frame()["text_a"], *entailment_frame()["text_a"], *entailment_frame()["text_b"]]
    return train_tokenizer(texts, vocab_size=500, min_frequency=1)


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
    so that the gradient reaches every position)."""

    def __init__(self, vocab_size: int, keyword_ids: list[int], constant: int | None = None):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(vocab_size, 8, generator=generator)
        weight[:, 0] = 0.0
        weight[keyword_ids, 0] = 1.0
        self.embeddings = torch.nn.Embedding.from_pretrained(weight, freeze=False)
        self.constant = constant

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids, attention_mask=None, **unused):
        hidden = self.embeddings(input_ids)
        hit = torch.clamp((hidden[..., 0] * attention_mask).sum(dim=1), max=1.0)
        margin = 10 * hit - 5
        if self.constant is not None:  # always the same class (kept differentiable for the white-box recipes)
            margin = 0 * margin + (5.0 if self.constant == 1 else -5.0)
        return SimpleNamespace(logits=torch.stack([-margin, margin], dim=-1))


def keyword_id(tokenizer) -> int:
    ids, words = whole_word_vocabulary(tokenizer)
    return int(ids[words.index(KEYWORD)])


def run_lines(attack, frame, seed=0):
    lines = []
    for _, row in frame.iterrows():
        text_b = None if pd.isna(row["text_b"]) else row["text_b"]
        outcome = attack.attack(row["text_a"], text_b, int(row["label"]), example_rng(seed, row["idx"]))
        lines.append((row, outcome))
    return lines


def plain_levenshtein(a: str, b: str) -> int:
    table = np.arange(len(b) + 1)
    for i, ca in enumerate(a, 1):
        prev, table[0] = table.copy(), i
        for j, cb in enumerate(b, 1):
            table[j] = min(prev[j] + 1, table[j - 1] + 1, prev[j - 1] + (ca != cb))
    return int(table[-1])


def changed_words(outcome):
    text = outcome.final.text
    return [(i, o, n) for i, (o, n) in enumerate(zip(text.original_words, text.words)) if o != n]


def test_words_and_separators_round_trip():
    text = AttackedText.from_pair("It's a well-made, charming film!", "Second one.")
    assert text.words == ("It's", "a", "well-made", "charming", "film", "Second", "one")
    edited = text.replace_word(3, "charmnig").replace_word(6, "0ne")
    assert edited.pair == ("It's a well-made, charmnig film!", "Second 0ne.")
    assert edited.modified == {3, 6} and edited.words_changed == 2
    assert text.replace_word(1, "", mark=False).modified == frozenset()


def test_resource_tables_are_read_and_checked(tmp_path):
    assert {"the", "and", "not"} <= RESOURCES.stopwords and "film" not in RESOURCES.stopwords
    assert "0" in RESOURCES.homoglyphs["o"] and set(RESOURCES.qwerty["a"]) == {"q", "w", "s", "z"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nab c\n")
    from kernels.attacks.resources import read_char_table
    with pytest.raises(ValueError, match=r"bad.tsv, line 2"):
        read_char_table(bad)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_constraints_hold_on_every_perturbed_text(recipe, tiny_victim):
    settings = AttackSettings(query_budget=300, beam_width=3, hotflip_min_cos_sim=-1.0, hotflip_candidates=5)
    attack = build_attack(recipe, tiny_victim, settings, RESOURCES)
    frame = pd.concat([sentiment_frame(10, seed=4), entailment_frame(6, seed=5)], ignore_index=True)
    frame["idx"] = range(len(frame))
    lines = run_lines(attack, frame)
    assert any(o.status != SKIPPED for _, o in lines)
    vocab = set(whole_word_vocabulary(tiny_victim.tokenizer)[1])
    for row, outcome in lines:
        changes = changed_words(outcome)
        assert outcome.queries <= settings.query_budget
        assert (outcome.status == SUCCESSFUL) == (outcome.final.pred != row["label"] and outcome.status != SKIPPED)
        assert len(changes) <= len(outcome.final.text.modified)  # a word is edited at most once
        for _, old, new in changes:
            assert old.lower() not in RESOURCES.stopwords
        if recipe == "deepwordbug":
            distance = sum(plain_levenshtein(x or "", y or "") for x, y in zip(outcome.final.text.pair,
                                                                               (row["text_a"], row["text_b"])))
            assert distance <= settings.max_edit_distance
        if recipe == "pruthi":
            assert len(changes) <= settings.pruthi_max_words
            for _, old, new in changes:
                assert len(old) >= 4 and new[0] == old[0] and new[-1] == old[-1]
        if recipe == "textbugger_char":
            for _, old, new in changes:
                assert abs(len(new) - len(old)) <= 1
        if recipe == "hotflip":
            assert len(changes) <= settings.hotflip_max_words
            assert all(new in vocab for _, _, new in changes)
    assert any(o.status == SUCCESSFUL for _, o in lines), f"{recipe} found nothing on a random tiny model"


class CountingVictim(ClassifierVictim):
    """Records every text the model is asked to score."""

    texts_run = 0

    def probabilities(self, pairs):
        self.texts_run += len(pairs)
        return super().probabilities(pairs)


class ListCountingGoal(UntargetedClassification):
    """Counts the results each search step receives, independently of the goal's own counter."""

    listed = 0

    def evaluate(self, texts, candidates=True):
        results = super().evaluate(texts, candidates)
        self.listed += len(results)
        return results


@pytest.mark.parametrize("recipe", ["deepwordbug", "pruthi"])
def test_queries_are_counted_exactly_with_cache_hits(recipe, tiny_victim, tokenizer):
    victim = CountingVictim(tiny_victim.model, tokenizer, max_length=64)
    attack = build_attack(recipe, victim, AttackSettings(query_budget=10_000), RESOURCES)
    attack.goal = ListCountingGoal(victim, 10_000)
    row = sentiment_frame(12, seed=8).iloc[[i for i in range(12)]]
    for _, example in row.iterrows():
        listed_before, run_before = attack.goal.listed, victim.texts_run
        first = attack.attack(example["text_a"], None, int(example["label"]), example_rng(0, example["idx"]))
        assert first.queries == attack.goal.listed - listed_before
        assert first.queries - first.cache_hits == victim.texts_run - run_before
    # a text scored twice within an example is a cache hit, and still a query
    goal = ListCountingGoal(victim, 5)
    goal.start_example(1)
    same, other = AttackedText.from_pair("a superb film"), AttackedText.from_pair("a dull film")
    run_before = victim.texts_run
    assert len(goal.evaluate([same, same, other])) == 3
    assert (goal.queries, goal.cache_hits, victim.texts_run - run_before) == (3, 1, 2)
    assert len(goal.evaluate([other, same, other])) == 2 and goal.exhausted  # truncated to the budget
    assert (goal.queries, goal.cache_hits, victim.texts_run - run_before) == (5, 3, 2)
    assert goal.evaluate([same]) == []
    # Pruthi's greedy search scores every candidate of every allowed word in one step: 1 + that many queries
    if recipe == "pruthi":
        example = row.iloc[0]
        text = AttackedText.from_pair(example["text_a"])
        fresh = build_attack(recipe, tiny_victim, AttackSettings(query_budget=10_000), RESOURCES)
        candidates = fresh.candidates(text, text, range(text.num_words), example_rng(0, example["idx"]),
                                      int(example["label"]))
        outcome = fresh.attack(example["text_a"], None, int(example["label"]), example_rng(0, example["idx"]))
        if outcome.status != SKIPPED:
            assert outcome.queries == 1 + len(candidates)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_budget_is_never_exceeded_and_the_budget_curve_is_exact(recipe, tiny_victim):
    frame = sentiment_frame(8, seed=6)
    full = build_attack(recipe, tiny_victim, AttackSettings(query_budget=400, beam_width=2,
                                                            hotflip_min_cos_sim=-1.0), RESOURCES)
    reference = run_lines(full, frame)
    for budget in (1, 3, 7, 15, 40):
        small = build_attack(recipe, tiny_victim, AttackSettings(query_budget=budget, beam_width=2,
                                                                 hotflip_min_cos_sim=-1.0), RESOURCES)
        for (_, ref), (_, out) in zip(reference, run_lines(small, frame)):
            assert out.queries <= budget
            if ref.status == SKIPPED:
                assert out.status == SKIPPED
            else:  # succeeds within `budget` exactly when the full run's first success came that early
                early = ref.first_success_query is not None and ref.first_success_query <= budget
                assert (out.status == SUCCESSFUL) == early


@pytest.mark.parametrize("recipe", ["deepwordbug", "textbugger_char"])
def test_same_seed_same_result(recipe, tiny_victim, tmp_path):
    frame = sentiment_frame(8, seed=2)

    def run(seed, name):
        attack = build_attack(recipe, tiny_victim, AttackSettings(query_budget=200), RESOURCES)
        return run_attack(attack, frame, seed=seed, progress_path=tmp_path / name, stamp="s", log=lambda m: None)

    first, second, other = run(7, "a.jsonl"), run(7, "b.jsonl"), run(8, "c.jsonl")
    strip = lambda lines: [{k: v for k, v in ln.items() if k != "seconds"} for ln in lines]  # noqa: E731
    assert strip(first) == strip(second)
    assert [ln["perturbed_text_a"] for ln in first] != [ln["perturbed_text_a"] for ln in other]


def test_interrupted_run_resumes_after_the_last_complete_line(tiny_victim, tmp_path):
    frame = sentiment_frame(6, seed=3)
    attack = build_attack("deepwordbug", tiny_victim, AttackSettings(query_budget=200), RESOURCES)
    path = tmp_path / "x.jsonl.part"
    complete = run_attack(attack, frame, seed=1, progress_path=path, stamp="s1", log=lambda m: None)
    raw = path.read_text().splitlines(keepends=True)
    path.write_text("".join(raw[:3]) + raw[3][:10])  # killed while writing line 4
    messages = []
    resumed = run_attack(attack, frame, seed=1, progress_path=path, stamp="s1", log=messages.append)
    assert messages == ["resuming deepwordbug after 3 of 6 examples"]
    strip = lambda lines: [{k: v for k, v in ln.items() if k != "seconds"} for ln in lines]  # noqa: E731
    assert strip(resumed) == strip(complete)
    assert [json.loads(x)["idx"] for x in path.read_text().splitlines()] == list(frame["idx"])
    # other settings: start over
    run_attack(attack, frame.iloc[:2], seed=1, progress_path=path, stamp="s2", log=messages.append)
    assert len(path.read_text().splitlines()) == 2 and len(messages) == 1


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_always_one_class_model_fails_every_correct_example_and_skips_the_rest(recipe, tokenizer):
    model = KeywordClassifier(len(tokenizer), [keyword_id(tokenizer)], constant=1)
    victim = ClassifierVictim(model, tokenizer, max_length=64)
    attack = build_attack(recipe, victim, AttackSettings(query_budget=200, hotflip_min_cos_sim=-1.0), RESOURCES)
    frame = sentiment_frame(10, seed=9)
    lines = run_lines(attack, frame)
    for row, outcome in lines:
        assert outcome.status == (FAILED if row["label"] == 1 else SKIPPED)
        assert (outcome.queries == 1) == (outcome.status == SKIPPED)
    summary = summarize([dict(status=o.status, words_changed=0, num_words=5, queries=o.queries, cache_hits=0,
                              first_success_query=None) for _, o in lines],
                        query_budget=200, seconds=1.0, bootstrap_samples=20, bootstrap_seed=0)
    assert summary["attack_success_rate"] == 0.0 and summary["original_accuracy"] == 0.5
    assert summary["accuracy_under_attack"] == 0.5 and summary["avg_perturbed_word_pct"] is None


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_keyword_model_attack_edits_the_keyword(recipe, tokenizer):
    victim = ClassifierVictim(KeywordClassifier(len(tokenizer), [keyword_id(tokenizer)]), tokenizer, max_length=64)
    attack = build_attack(recipe, victim, AttackSettings(query_budget=500, hotflip_min_cos_sim=-1.0), RESOURCES)
    texts = [f"the cast is {KEYWORD} and the ending is moving", f"a {KEYWORD} film , quite honestly",
             "the plot is dull and the acting is clumsy"]
    frame = pd.DataFrame({"idx": [0, 1, 2], "text_a": texts, "text_b": [None] * 3, "label": [1, 1, 0]})
    lines = run_lines(attack, frame)
    for (row, outcome) in lines[:2]:
        assert outcome.status == SUCCESSFUL, outcome.final.text.pair
        assert [old for _, old, _ in changed_words(outcome)] == [KEYWORD]
    if recipe == "hotflip":  # a word swap can bring the keyword in: the gradient points at it
        assert lines[2][1].status == SUCCESSFUL and [new for _, _, new in changed_words(lines[2][1])] == [KEYWORD]
    else:
        assert lines[2][1].status == FAILED  # nothing to remove, and no character edit creates the keyword
    if recipe == "deepwordbug":  # ranking: the keyword first, then one edit: n probes + 1 + a few candidates
        attackable = sum(w.lower() not in RESOURCES.stopwords for w in AttackedText.from_pair(texts[0]).words)
        assert lines[0][1].queries <= 1 + attackable + 4


def test_universal_trigger_search_finds_the_keyword(tokenizer):
    victim = ClassifierVictim(KeywordClassifier(len(tokenizer), [keyword_id(tokenizer)]), tokenizer, max_length=64)
    negatives = [("the plot is dull", None), ("a clumsy , boring film", None), ("the acting is awful", None)]
    found = find_trigger(victim, negatives, target=1, length=2, steps=2, candidates=5, beam=1)
    assert KEYWORD in found["words"] and found["loss"] < found["loss_history"][0]


def test_summary_follows_textattack_definitions():
    lines = [dict(status=s, words_changed=w, num_words=10, queries=q, cache_hits=0, first_success_query=f)
             for s, w, q, f in [(SUCCESSFUL, 1, 20, 15), (SUCCESSFUL, 3, 40, 40), (FAILED, 0, 60, None),
                                (SKIPPED, 0, 1, None)]]
    s = summarize(lines, query_budget=100, seconds=2.0, bootstrap_samples=200, bootstrap_seed=0)
    assert (s["successful"], s["failed"], s["skipped"]) == (2, 1, 1)
    assert s["original_accuracy"] == 0.75 and s["accuracy_under_attack"] == 0.25
    assert s["attack_success_rate"] == pytest.approx(2 / 3) and s["avg_perturbed_word_pct"] == pytest.approx(20.0)
    assert s["avg_queries"] == pytest.approx(40.0) and s["queries_per_second"] == pytest.approx(60.5)
    assert s["attack_success_rate_ci_low"] <= s["attack_success_rate"] <= s["attack_success_rate_ci_high"]
    curve = {p["budget"]: p["accuracy_under_attack"] for p in accuracy_vs_budget(lines, 100)}
    assert curve[10] == 0.75 and curve[20] == 0.5 and curve[50] == 0.25 and curve[100] == 0.25
    assert fingerprint(a=1, b=2) == fingerprint(b=2, a=1) != fingerprint(a=1, b=3)


def test_word_ranking_uses_the_tokenizers_own_unk_token(tiny_victim):
    unk = tiny_victim.unk_token
    (probe,) = tiny_victim.tokenize([(f"the plot is {unk} today", None)])
    assert probe.ids.count(tiny_victim.tokenizer.unk_token_id) == 1  # one token, not "[", "UN", "K", "]"
    (literal,) = tiny_victim.tokenize([("the plot is [UNK] today", None)])
    assert tiny_victim.tokenizer.unk_token_id not in literal.ids
