"""The attack stage (kernels.attacks): constraints on every perturbed text, exact query counting with
cache hits, the query budget, seeding, sanity models (always one class; a keyword model for 2 and 3
classes; a token-count model that is never fooled), and the pieces each recipe's correctness rests on
(goal, Levenshtein, stopwords, minimum word length). Word recipes' own tests: test_attacks_words.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from attack_support import (KEYWORD, RESOURCES, KeywordClassifier, TokenCountClassifier, changed_words,
                            frame_of, keyword_id, plain_levenshtein, run_lines, tiny_victim, tokenizer)  # noqa: F401
from kernels.attacks import constraints as C
from kernels.attacks.attack import FAILED, SKIPPED, SUCCESSFUL
from kernels.attacks.goal import GoalResult, UntargetedClassification
from kernels.attacks.recipes import RECIPES, AttackSettings, build_attack
from kernels.attacks.runner import accuracy_vs_budget, example_rng, fingerprint, run_attack, summarize
from kernels.attacks.text import AttackedText, levenshtein, text_distance
from kernels.attacks.victim import ClassifierVictim, whole_word_vocabulary
from kernels.attacks.whitebox import find_trigger
from test_training_support import entailment_frame, sentiment_frame

torch.set_num_threads(1)
WORD_RECIPES = sorted(name for name, r in RECIPES.items() if r.changes == "words")


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
    settings = AttackSettings(query_budget=300, beam_width=3, hotflip_candidates=5)
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
        if recipe in WORD_RECIPES:  # WordNet synonyms only
            for _, old, new in changes:
                assert new.lower() in {s.word for s in RESOURCES.synonyms.synonyms(old)}, (old, new)
    if recipe not in WORD_RECIPES:  # (a synonym of these test words rarely changes what they say)
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
    full = build_attack(recipe, tiny_victim, AttackSettings(query_budget=400, beam_width=2, hotflip_candidates=3),
                        RESOURCES)
    reference = run_lines(full, frame)
    for budget in (1, 3, 7, 15, 40):
        small = build_attack(recipe, tiny_victim, AttackSettings(query_budget=budget, beam_width=2,
                                                                 hotflip_candidates=3), RESOURCES)
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
        return run_attack(attack, frame, attack_seed=seed, model_seed=0, progress_path=tmp_path / name, stamp="s",
                          log=lambda m: None)

    first, second, other = run(7, "a.jsonl"), run(7, "b.jsonl"), run(8, "c.jsonl")
    strip = lambda lines: [{k: v for k, v in ln.items() if k != "seconds"} for ln in lines]  # noqa: E731
    assert strip(first) == strip(second)
    assert [ln["perturbed_text_a"] for ln in first] != [ln["perturbed_text_a"] for ln in other]


def test_interrupted_run_resumes_after_the_last_complete_line(tiny_victim, tmp_path):
    frame = sentiment_frame(6, seed=3)
    attack = build_attack("deepwordbug", tiny_victim, AttackSettings(query_budget=200), RESOURCES)
    path = tmp_path / "x.jsonl.part"
    complete = run_attack(attack, frame, attack_seed=1, model_seed=0, progress_path=path, stamp="s1",
                          log=lambda m: None)
    raw = path.read_text().splitlines(keepends=True)
    path.write_text("".join(raw[:3]) + raw[3][:10])  # killed while writing line 4
    messages = []
    resumed = run_attack(attack, frame, attack_seed=1, model_seed=0, progress_path=path, stamp="s1",
                         log=messages.append)
    assert messages == ["resuming deepwordbug after 3 of 6 examples"]
    strip = lambda lines: [{k: v for k, v in ln.items() if k != "seconds"} for ln in lines]  # noqa: E731
    assert strip(resumed) == strip(complete)
    assert [json.loads(x)["idx"] for x in path.read_text().splitlines()] == list(frame["idx"])
    # other settings: start over
    run_attack(attack, frame.iloc[:2], attack_seed=1, model_seed=0, progress_path=path, stamp="s2",
               log=messages.append)
    assert len(path.read_text().splitlines()) == 2 and len(messages) == 1


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_always_one_class_model_fails_every_correct_example_and_skips_the_rest(recipe, tokenizer):
    model = KeywordClassifier(len(tokenizer), [keyword_id(tokenizer)], constant=1)
    victim = ClassifierVictim(model, tokenizer, max_length=64)
    attack = build_attack(recipe, victim, AttackSettings(query_budget=200), RESOURCES)
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
    attack = build_attack(recipe, victim, AttackSettings(query_budget=500), RESOURCES)
    texts = [f"the cast is {KEYWORD} and the ending is moving", f"a {KEYWORD} film , quite honestly",
             "the plot is dull and the acting is clumsy", "the plot is dull but the acting is brilliant"]
    lines = run_lines(attack, frame_of(texts, [1, 1, 0, 0]))
    for (row, outcome) in lines[:2]:
        assert outcome.status == SUCCESSFUL, outcome.final.text.pair
        assert [old for _, old, _ in changed_words(outcome)] == [KEYWORD]
    assert lines[2][1].status == FAILED  # nothing to remove, and no edit there creates the keyword
    if recipe in WORD_RECIPES:  # brilliant -> superb (its WordNet synonym) brings the keyword in
        assert lines[3][1].status == SUCCESSFUL and changed_words(lines[3][1]) == [(8, "brilliant", KEYWORD)]
    else:
        assert lines[3][1].status == FAILED
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


# --------------------------------------------------------------- what each recipe's correctness rests on

def test_success_is_a_changed_prediction_not_a_score_above_one_half():
    """Three classes: p(true) = 0.43 is still the top class (not a success, though the score 0.57 > 0.5),
    and a wrong class at 0.45 is a success."""
    kept = GoalResult(AttackedText.from_pair("x"), np.array([0.43, 0.30, 0.27]), label=0)
    flipped = GoalResult(AttackedText.from_pair("x"), np.array([0.35, 0.45, 0.20]), label=0)
    assert kept.score > 0.5 and not kept.succeeded and kept.pred == 0
    assert flipped.succeeded and flipped.pred == 1


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_three_class_victim_is_attacked_when_right_with_p_below_one_half(recipe, tokenizer):
    """The 3-class keyword model answers class 0 with p = 0.43 without the keyword: such examples are
    attacked (not skipped), fail unless an edit brings the keyword in, and succeed exactly when the
    prediction changes."""
    model = KeywordClassifier(len(tokenizer), [keyword_id(tokenizer)], num_labels=3)
    victim = ClassifierVictim(model, tokenizer, max_length=64)
    attack = build_attack(recipe, victim, AttackSettings(query_budget=300), RESOURCES)
    texts = ["the plot is dull and the acting is clumsy", "the plot is dull but the acting is brilliant",
             f"the cast is {KEYWORD}", "the story is tedious"]
    lines = run_lines(attack, frame_of(texts, [0, 0, 0, 2]))
    for row, outcome in lines:
        clean = victim.probabilities([(row["text_a"], None)])[0]
        assert (outcome.status == SKIPPED) == (int(np.argmax(clean)) != row["label"])
        if outcome.status != SKIPPED:
            assert clean.max() < 0.5  # right, with p(true label) below one half
            assert (outcome.status == SUCCESSFUL) == (outcome.final.pred != row["label"])
    assert [o.status for _, o in lines][0] == FAILED and [o.status for _, o in lines][2:] == [SKIPPED, SKIPPED]
    assert lines[1][1].status == (SUCCESSFUL if recipe in WORD_RECIPES else FAILED)


def test_levenshtein_is_the_dynamic_programme():
    """Against the plain dynamic programme, with common prefixes and suffixes that overlap (repetitive
    strings over two letters: 'aaa' / 'aa', 'abab' / 'ab', ...)."""
    rng = np.random.default_rng(0)
    pairs = [("aaa", "aa"), ("aa", "aaa"), ("abab", "ab"), ("ab", "abab"), ("aba", "aaba"), ("abcab", "ab"),
             ("", "abc"), ("abc", ""), ("kitten", "sitting")]
    pairs += [("".join(rng.choice(list("ab"), rng.integers(0, 9))), "".join(rng.choice(list("ab"), rng.integers(0, 9))))
              for _ in range(400)]
    for first, second in pairs:
        assert levenshtein(first, second) == plain_levenshtein(first, second), (first, second)


def test_edit_distance_limit_allows_30_and_rejects_31():
    original = AttackedText.from_pair("aaaa " * 20, "bbbb " * 10)
    words = list(original.words)
    for edits, allowed in ((29, True), (30, True), (31, False)):
        text = original
        for i in range(edits):  # one substituted character in each of `edits` words (a..., b... repeated)
            index = i % len(words)
            text = text.replace_word(index, "x" * (i // len(words) + 1) + words[index][i // len(words) + 1:])
        assert text_distance(text, original) == sum(plain_levenshtein(a or "", b or "")
                                                    for a, b in zip(text.pair, original.pair)) == edits
        assert C.MaxEditDistance(30).allows(text, original) is allowed


def test_deepwordbug_stops_at_the_edit_distance_limit(tokenizer):
    """A victim that every token-adding typo makes less sure, and that is never fooled: DeepWordBug keeps
    editing words until the next edit would pass 30 edits of the whole text."""
    victim = ClassifierVictim(TokenCountClassifier(len(tokenizer)), tokenizer, max_length=512)
    attack = build_attack("deepwordbug", victim, AttackSettings(query_budget=100_000), RESOURCES)
    words = [w for w in sentiment_frame(200)["text_a"].str.cat(sep=" ").split()
             if w.isalpha() and w not in RESOURCES.stopwords]
    text = " ".join(words[:45])
    (_, outcome), = run_lines(attack, frame_of([text], [1]))
    distance = plain_levenshtein(outcome.final.text.text_a, text)
    assert outcome.status == FAILED and 28 <= distance <= 30
    assert len(outcome.final.text.modified) < 45  # stopped by the limit, not by running out of words


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_capitalised_stopwords_are_never_edited(recipe, tokenizer):
    assert not C.StopwordModification(RESOURCES.stopwords).allows_index(AttackedText.from_pair("The AND Not"), 0)
    victim = ClassifierVictim(KeywordClassifier(len(tokenizer), [keyword_id(tokenizer)]), tokenizer, max_length=64)
    attack = build_attack(recipe, victim, AttackSettings(query_budget=400), RESOURCES)
    texts = [f"The cast Is {KEYWORD} AND The ending Is moving", f"THE film WAS {KEYWORD} , Quite Honestly"]
    text = AttackedText.from_pair(texts[0])
    assert [text.words[i] for i in attack.modifiable_indices(text)] == [
        w for w in text.words if w.lower() not in RESOURCES.stopwords]
    for _, outcome in run_lines(attack, frame_of(texts, [1, 1])):
        for _, old, _ in changed_words(outcome):
            assert old.lower() not in RESOURCES.stopwords


def test_pruthi_edits_words_of_four_letters_or_more(tiny_victim):
    attack = build_attack("pruthi", tiny_victim, AttackSettings(), RESOURCES)
    text = AttackedText.from_pair("the dull film was fun and long")
    assert [text.words[i] for i in attack.modifiable_indices(text)] == ["dull", "film", "long"]
    assert C.MinWordLength(4).allows_index(text, 1) and not C.MinWordLength(4).allows_index(text, 4)


def test_pruthi_proposes_every_qwerty_neighbour(tiny_victim):
    """TextAttack's Pruthi recipe: WordSwapQWERTY(random_one=False) at every inner position."""
    attack = build_attack("pruthi", tiny_victim, AttackSettings(), RESOURCES)
    text = AttackedText.from_pair("dull")
    proposed = {c.words[0] for c in attack.candidates(text, text, [0], example_rng(0, 0), 1)}
    for i in (1, 2):
        for key in RESOURCES.qwerty["dull"[i]]:
            assert "dull"[:i] + key + "dull"[i + 1:] in proposed
