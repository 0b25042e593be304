"""The word-substitution recipes (HotFlip, PWWS) and the universal triggers: WordNet synonyms only (the
bundled table, the full WordNet through nltk and the two agreeing), PWWS's weighted-saliency ranking,
HotFlip's cosine radius, and inserted words tokenised exactly as they stand in the text."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from attack_support import (EXTRA_WORDNET, KEYWORD, RESOURCES, TEST_SYNONYMS, KeywordClassifier, changed_words,
                            frame_of, keyword_id, run_lines, tiny_victim, tokenizer, training_texts)  # noqa: F401
from kernels.attacks.recipes import RECIPES, AttackSettings, build_attack, recipe_table_markdown
from kernels.attacks.resources import DEFAULT_DIR
from kernels.attacks.runner import example_rng
from kernels.attacks.search import GreedyWordSwapWIR, softmax
from kernels.attacks.text import AttackedText
from kernels.attacks.victim import ClassifierVictim
from kernels.attacks.whitebox import GradientWordSwap, apply_trigger, cosine, find_trigger, trigger_word_spans
from kernels.attacks.wordnet import (NltkWordNet, Synonym, nltk_wordnet, SynonymTable, demo_vocabulary, format_table_line,
                                     match_case, non_synonym_substitutions, read_synonym_table, reader_synonyms,
                                     substitutions)
from test_training_support import sentiment_frame

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
WORD_RECIPES = sorted(name for name, r in RECIPES.items() if r.changes == "words")
BUNDLED_TABLE = DEFAULT_DIR / "wordnet_synonyms.tsv"
# A real WordNet 3.0 database a test can point at (Debian's wordnet-base; WORDNET_DIR overrides)
WORDNET_DIR = Path(os.environ.get("WORDNET_DIR", "/usr/share/wordnet"))


def full_wordnet_or_skip() -> NltkWordNet:
    pytest.importorskip("nltk", reason="nltk (the `wordnet` extra) is not installed")
    if not (WORDNET_DIR / "data.noun").is_file():
        pytest.skip(f"no WordNet 3.0 database at {WORDNET_DIR} (apt-get install wordnet-base, or set WORDNET_DIR)")
    return nltk_wordnet(str(WORDNET_DIR))  # opened once per process


# ------------------------------------------------------------------------------------------------- WordNet

def test_bundled_table_lists_every_word_of_the_demo_data_with_its_synonyms():
    table = read_synonym_table(BUNDLED_TABLE)
    words = demo_vocabulary(REPO / "resources" / "data")
    assert sorted(table.entries) == words
    assert {s.word for s in table.synonyms("film")} >= {"movie", "picture", "flick"}
    assert {s.word for s in table.synonyms("dull") if s.pos == "a"} >= {"boring", "tedious"}
    assert table.synonyms("Film") == table.synonyms("film") and table.synonyms("the") == ()
    header = BUNDLED_TABLE.read_text(encoding="utf-8")
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in header
    assert "python -m kernels.attacks.wordnet" in header


def test_bundled_table_is_wordnets_own_entries():
    """The derived table equals what the full WordNet (nltk's reader on a real WordNet 3.0 database) gives
    for each of its words, in the table's own format (so the table could be made again from it)."""
    wordnet = full_wordnet_or_skip()
    lines = [ln for ln in BUNDLED_TABLE.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    for line in lines:
        word = line.split("\t")[0]
        assert line == format_table_line(word, wordnet.synonyms(word)), word
    for word, synonyms in EXTRA_WORDNET.items():  # the test sentences' words the demo data lacks
        assert wordnet.synonyms(word) == synonyms, word


def test_full_wordnet_follows_textattacks_synonym_rule():
    wordnet = full_wordnet_or_skip()
    terrible = wordnet.synonyms("terrible")
    assert {"awful", "dreadful", "atrocious"} <= {s.word for s in terrible} and {s.pos for s in terrible} == {"a"}
    assert all("_" not in s.word and s.word != "terrible" for s in terrible)
    assert "movie" in {s.word for s in wordnet.synonyms("films")}  # base forms found by nltk's morphy count
    assert wordnet.covers("zyzzyva") and wordnet.synonyms("qwertyuiop") == ()
    assert wordnet.synonyms("Terrible") == terrible and reader_synonyms(wordnet.reader, "terrible") == terrible
    assert "WordNet 3.0" in wordnet.description


def test_full_wordnet_drives_pwws_when_configured(tiny_victim):
    """attack.wordnet.source: nltk with a database directory: the recipe reads the full WordNet."""
    from kernels.attacks.resources import WordNetSettings, load_resources

    full_wordnet_or_skip()
    resources = load_resources(wordnet=WordNetSettings(source="nltk", dir=str(WORDNET_DIR)))
    assert "WordNet 3.0 through nltk" in resources.synonyms.description
    attack = build_attack("pwws", tiny_victim, AttackSettings(query_budget=300), resources)
    for _, outcome in run_lines(attack, sentiment_frame(6, seed=3)):
        for _, old, new in changed_words(outcome):
            assert new.lower() in {s.word.lower() for s in resources.synonyms.synonyms(old)}


def test_bad_table_lines_and_missing_wordnet_are_clear_errors(tmp_path):
    from kernels.attacks.wordnet import open_nltk_wordnet

    bad = tmp_path / "table.tsv"
    bad.write_text("# comment\nfilm\tn:movie\nFilm\tn:movie\n")
    with pytest.raises(ValueError, match=r"table.tsv, line 3"):
        read_synonym_table(bad)
    bad.write_text("film\tx:movie\n")
    with pytest.raises(ValueError, match=r"line 1.*pos"):
        read_synonym_table(bad)
    pytest.importorskip("nltk")
    with pytest.raises(FileNotFoundError, match=r"attack.wordnet.dir .*not a WordNet 3.0 database"):
        open_nltk_wordnet(tmp_path)


def test_substitutions_are_checked_word_for_word():
    table = SynonymTable({"film": (Synonym("movie", "n"),), "dull": (Synonym("boring", "a"),)}, "t")
    assert substitutions("The film is dull", None, "The movie is boring", None) == [("film", "movie"), ("dull", "boring")]
    good = {"idx": 0, "status": "successful", "text_a": "A dull Film", "text_b": None,
            "perturbed_text_a": "A boring Movie", "perturbed_text_b": None}
    bad = {**good, "idx": 1, "perturbed_text_a": "A bad Movie"}
    assert non_synonym_substitutions([good, {**bad, "status": "failed"}], table) == []
    assert non_synonym_substitutions([good, bad], table) == [{"idx": 1, "old": "dull", "new": "bad"}]
    assert match_case("movie", "Film") == "Movie" and match_case("movie", "FILM") == "MOVIE"


# ------------------------------------------------------------------------------------------------- HotFlip

@pytest.fixture(scope="module")
def start_tokenizer():
    """A byte-level BPE that has also seen 'movie', 'film' and 'dull' at the start of a text, so that these are
    one token there (without the leading-space marker) and their synonyms 'boring', 'tedious' are not."""
    from kernels.tokenization import train_tokenizer

    starts = ["movie of the year", "film of the week", "dull film of the week"] * 20
    return train_tokenizer(training_texts() + starts, vocab_size=520, min_frequency=1)


def test_hotflip_flips_one_token_exactly_as_it_stands_in_the_text(start_tokenizer):
    """Every HotFlip candidate differs from the text it was scored on in exactly the one token whose gain was
    estimated, also for the first word of a text (byte-level BPE: no leading-space marker there): 'boring' and
    'tedious' are one token after a space but not at the start, 'movie' and 'film' are one token in both."""
    model = KeywordClassifier(len(start_tokenizer), [keyword_id(start_tokenizer)])
    victim = ClassifierVictim(model, start_tokenizer, max_length=64)
    encode = start_tokenizer.backend_tokenizer.encode
    assert [len(encode(w).ids) > 2 for w in ("boring", "tedious")] == [True, True]  # the word + </s>
    assert [len(encode(w).ids) for w in ("dull", "film", "movie")] == [2, 2, 2]
    assert [len(encode(f"a {w}").ids) for w in ("boring", "tedious", "movie", "film")] == [3] * 4
    swap = GradientWordSwap(victim, TEST_SYNONYMS, min_cos_sim=-1.0, top_n=1000)
    first_words = {}
    for text_a in ("film is dull , the movie is tedious", "movie of the year , a dull film",
                   "dull film , the movie is boring"):
        text = AttackedText.from_pair(text_a)
        (before,) = victim.tokenize([text.pair])
        candidates = swap(text, range(text.num_words), example_rng(0, 0), label=0)
        assert candidates
        for candidate, after in zip(candidates, victim.tokenize([c.pair for c in candidates])):
            differ = [i for i, (a, b) in enumerate(zip(before.ids, after.ids)) if a != b]
            assert len(after.ids) == len(before.ids) and len(differ) == 1, candidate.pair
        first_words[text.words[0]] = {c.words[0] for c in candidates if c.words[0] != text.words[0]}
        inner = {c.words[i] for c in candidates for i in range(1, text.num_words) if c.words[i] != text.words[i]}
        assert inner & {"boring", "tedious", "movie", "film"}
    assert first_words == {"film": {"movie"}, "movie": {"film"}, "dull": set()}


def test_hotflip_only_swaps_in_wordnet_synonyms_of_the_same_part_of_speech(tiny_victim):
    attack = build_attack("hotflip", tiny_victim, AttackSettings(query_budget=400, hotflip_candidates=3), RESOURCES)
    frame = sentiment_frame(16, seed=7)
    swaps = 0
    for _, outcome in run_lines(attack, frame):
        for _, old, new in changed_words(outcome):
            shared = {s.pos for s in TEST_SYNONYMS.synonyms(old) if s.word == new.lower()}
            assert shared, (old, new)  # a synonym, through a synset of one part of speech shared by both
            swaps += 1
    assert swaps > 0 and attack.transformation.counts["synonyms"] >= attack.transformation.counts["within_cos_sim"]


def test_hotflip_keeps_the_cosine_radius_on_every_swap(tiny_victim):
    """With a radius, exactly the flips within it are proposed (the threshold chosen between the cosines of
    the flips there are), and every swap of an attack is within it."""
    text = AttackedText.from_pair(sentiment_frame(40, seed=2)["text_a"].str.cat(sep=" , "))
    table = tiny_victim.embedding_table().numpy().astype(np.float64)

    def flip_cosines(candidates):
        (before,) = tiny_victim.tokenize([text.pair])
        out = {}
        for c, after in zip(candidates, tiny_victim.tokenize([c.pair for c in candidates])):
            (i,) = [i for i, (a, b) in enumerate(zip(before.ids, after.ids)) if a != b]
            out[c.pair] = cosine(table[before.ids[i]], table[after.ids[i]])
        return out

    every = flip_cosines(GradientWordSwap(tiny_victim, TEST_SYNONYMS, -1.0, 10_000)(text, range(text.num_words),
                                                                                    example_rng(0, 0), label=1))
    assert len(every) >= 4
    threshold = float(np.median(list(every.values())))
    kept = flip_cosines(GradientWordSwap(tiny_victim, TEST_SYNONYMS, threshold, 10_000)(text, range(text.num_words),
                                                                                         example_rng(0, 0), label=1))
    assert set(kept) == {pair for pair, cos in every.items() if cos >= threshold} != set(every)
    attack = build_attack("hotflip", tiny_victim, AttackSettings(query_budget=300, hotflip_min_cos_sim=threshold,
                                                                 hotflip_candidates=3), RESOURCES)
    for _, outcome in run_lines(attack, sentiment_frame(16, seed=7)):
        (before,), (after,) = tiny_victim.tokenize([outcome.original.text.pair]), tiny_victim.tokenize([outcome.final.text.pair])
        for a, b in zip(before.ids, after.ids):
            if a != b:
                assert cosine(table[a], table[b]) >= threshold


# ---------------------------------------------------------------------------------------------------- PWWS

def test_pwws_ranks_by_softmax_saliency_times_the_best_probability_drop(tiny_victim):
    """The ranking recomputed here from the victim's probabilities: softmax over the words of
    1 - p(y | word -> unk), times max over synonyms of p(y | x) - p(y | x with the synonym)."""
    attack = build_attack("pwws", tiny_victim, AttackSettings(query_budget=10_000), RESOURCES)
    for _, row in sentiment_frame(6, seed=11).iterrows():
        label = int(row["label"])
        text = AttackedText.from_pair(row["text_a"])
        attack.goal.start_example(label)
        (initial,) = attack.goal.evaluate([text], candidates=False)
        indices = [i for i, w in enumerate(text.words) if w.lower() not in RESOURCES.stopwords]
        p = lambda texts: tiny_victim.probabilities([t.pair for t in texts])[:, label]  # noqa: E731
        saliency = softmax(1 - p([text.replace_word(i, tiny_victim.unk_token, mark=False) for i in indices]))
        drops = []
        for i in indices:
            synonyms = [text.replace_word(i, match_case(s.word, text.words[i]))
                        for s in TEST_SYNONYMS.synonyms(text.words[i]) if s.word != text.words[i]]
            drops.append(max(p([text]) - p(synonyms)) if synonyms else 0.0)
        expected = [indices[j] for j in np.argsort(-(saliency * np.asarray(drops)), kind="stable")]
        queries_before = attack.goal.queries
        assert GreedyWordSwapWIR("weighted-saliency").rank(attack, initial, example_rng(0, 0)) == expected
        n_candidates = sum(len(attack.candidates(text, text, [i], None, label)) for i in indices)
        assert attack.goal.queries - queries_before == len(indices) + n_candidates  # probes + candidates
        assert attack.goal.first_success_query is None  # ranking flips are not yet successes


def test_pwws_takes_the_word_whose_synonym_flips_first(tokenizer):
    victim = ClassifierVictim(KeywordClassifier(len(tokenizer), [keyword_id(tokenizer)]), tokenizer, max_length=64)
    attack = build_attack("pwws", victim, AttackSettings(query_budget=500), RESOURCES)
    (_, outcome), = run_lines(attack, frame_of(["the film is dull but the cast is brilliant"], [0]))
    assert outcome.status == "successful" and changed_words(outcome) == [(8, "brilliant", KEYWORD)]
    text = AttackedText.from_pair("the film is dull but the cast is brilliant")
    ranked = sum(1 + len(attack.candidates(text, text, [i], None, 0)) for i in attack.modifiable_indices(text))
    first = [c.words[8] for c in attack.candidates(text, text, [8], None, 0)].index(KEYWORD) + 1
    assert outcome.first_success_query == 1 + ranked + first  # clean, ranking, then brilliant's candidates


# --------------------------------------------------------------------------------------- universal triggers

def test_trigger_words_are_the_tokens_the_search_scored(start_tokenizer):
    """Each word of a found trigger is one token where it stands (the first without the leading-space
    marker), and that token is the one whose gradient gain the search used."""
    model = KeywordClassifier(len(start_tokenizer), [keyword_id(start_tokenizer)])
    victim = ClassifierVictim(model, start_tokenizer, max_length=64)
    negatives = [("the plot is dull", None), ("a clumsy , boring film", None), ("the acting is awful", None)]
    for length in (1, 2, 3):
        found = find_trigger(victim, negatives, target=1, length=length, steps=2, candidates=8, beam=2)
        assert found["token_ids"] == [[i] for i in found["scored_token_ids"]], found
        for (tokens,) in [victim.tokenize(apply_trigger(found["words"], [pair])) for pair in negatives]:
            for (start, end), token in zip(trigger_word_spans(found["words"]), found["scored_token_ids"]):
                assert [tokens.ids[i] for i in tokens.tokens_overlapping(0, start, end)] == [token]
    assert KEYWORD in found["words"] and found["loss"] < found["loss_history"][0]


def test_trigger_candidates_are_whole_words(tokenizer):
    """A byte-level BPE vocabulary holds word beginnings ('soundtrac', 'bril'); with a word list, the trigger
    search takes only tokens that are words (here: stopwords and the test synonym source's words)."""
    from kernels.attacks.whitebox import _Vocabulary

    victim = ClassifierVictim(KeywordClassifier(len(tokenizer), [keyword_id(tokenizer)]), tokenizer, max_length=64)
    is_word = lambda w: w in RESOURCES.stopwords or TEST_SYNONYMS.is_word(w)  # noqa: E731
    every, words = _Vocabulary(victim, first=False), _Vocabulary(victim, first=False, is_word=is_word)
    assert {"soundtrac", "bril"} <= set(every.words) and not {"soundtrac", "bril"} & set(words.words)
    assert set(words.words) == {w for w in every.words if is_word(w)} and KEYWORD in words.words
    negatives = [("the plot is dull", None), ("a clumsy , boring film", None)]
    found = find_trigger(victim, negatives, target=1, length=2, steps=2, candidates=8, beam=2, is_word=is_word)
    assert all(is_word(w) for w in found["words"]) and KEYWORD in found["words"]


# ----------------------------------------------------------------------------------------------- the table

def test_readme_has_the_recipe_table_of_the_registry():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert recipe_table_markdown() in readme
    assert {r.changes for r in RECIPES.values()} == {"characters", "words"}
    assert dataclasses.asdict(RECIPES["pwws"])["changes"] == "words"


def test_run_attack_files_substitute_only_wordnet_synonyms():
    """On a run's attack outputs (the checkout's results/ after `snakemake report`, or ATTACK_RESULTS): every
    substitution of every successful HotFlip and PWWS attack is a WordNet synonym of the word it replaces,
    checked against the full WordNet where it is installed (else the bundled table)."""
    import json

    root = Path(os.environ.get("ATTACK_RESULTS", REPO / "results" / "attacks"))
    files = sorted(p for p in root.glob("*/*/seed*/*.jsonl") if p.stem in WORD_RECIPES)
    if not files:
        pytest.skip(f"no HotFlip / PWWS outputs under {root} (run the workflow first, or set ATTACK_RESULTS)")
    try:
        synonyms = full_wordnet_or_skip()
    except pytest.skip.Exception:
        synonyms = read_synonym_table(BUNDLED_TABLE)
    checked = 0
    for path in files:
        lines = [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines()]
        assert non_synonym_substitutions(lines, synonyms) == [], path
        checked += sum(len(substitutions(ln["text_a"], ln["text_b"], ln["perturbed_text_a"], ln["perturbed_text_b"]))
                       for ln in lines if ln["status"] == "successful")
    assert checked > 0
