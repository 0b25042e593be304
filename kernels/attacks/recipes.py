"""The recipes, each a few lines of goal + constraints + transformation + search (as TextAttack's
``attack_recipes``), registered with what they change, the recipe they follow and where they depart from it.

``RECIPES`` is the one registry the stage reads: the workflow takes the recipe names from the ``@recipe``
decorators below (rules/common.smk reads this file without importing it), the report takes their labels and
the departure table from it, and README's recipe table is ``recipe_table_markdown()`` (a test holds it), so
adding a recipe touches this file only. This module imports no torch (the report reads it): the white-box
pieces are imported when a white-box recipe is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kernels.attacks import constraints as C
from kernels.attacks import transformations as T
from kernels.attacks.attack import Attack
from kernels.attacks.goal import UntargetedClassification
from kernels.attacks.resources import AttackResources
from kernels.attacks.search import BeamSearch, GreedyWordSwapWIR

TRIGGER_RECIPE = "universal_trigger"


@dataclass(frozen=True)
class AttackSettings:
    query_budget: int = 2000
    beam_width: int = 10              # HotFlip's beam
    max_edit_distance: int = 30       # DeepWordBug: Levenshtein distance of the whole text
    pruthi_max_words: int = 1         # Pruthi et al. also report 2
    hotflip_max_words: int = 2
    hotflip_min_cos_sim: float = -1.0  # optional radius in the victim's own embedding table (-1: off; README)
    hotflip_candidates: int = 1       # flips proposed per beam member and step, by first-order gain (TextAttack: 1)


@dataclass(frozen=True)
class Recipe:
    name: str
    label: str
    changes: str                      # "characters" or "words": what its transformation edits
    access: str                       # "black-box" (queries only) or "white-box" (gradients)
    reference: str                    # the recipe it follows
    departures: tuple[str, ...]       # where it departs from that reference
    build: Callable | None = None     # (goal, settings, resources) -> Attack; None: its own rules (the trigger)
    # the attack.* settings that this recipe alone reads (AttackSettings fields): rules/common.smk reads them
    # from the decorator, so changing one re-runs only this recipe's attack jobs
    reads: tuple[str, ...] = ()


RECIPES: dict[str, Recipe] = {}
PROJECT_STOPWORDS = "stopwords: the project's list (resources/attacks), TextAttack reads NLTK's (a download)"
OWN_UNK = "word importance with the tokenizer's own unknown token (TextAttack writes BERT's literal [UNK])"


def recipe(name: str, **info):
    """Register the decorated builder as recipe ``name`` (``info``: Recipe's descriptive fields)."""
    def register(build):
        if name in RECIPES or name == TRIGGER_RECIPE:
            raise ValueError(f"attack recipe {name!r} is registered twice")
        RECIPES[name] = Recipe(name=name, build=build, **info)
        return build
    return register


@recipe("deepwordbug", label="DeepWordBug", changes="characters", access="black-box", reads=("max_edit_distance",),
        reference="TextAttack deepwordbug_gao_2018 (arXiv 1801.04354)",
        departures=(OWN_UNK, PROJECT_STOPWORDS))
def deepwordbug(goal, settings, res):
    """Gao et al. 2018: one random swap / substitution / deletion / insertion per word, greedy over WIR (unk)."""
    edits = (T.NeighbouringSwap(random_one=True), T.RandomSubstitution(random_one=True),
             T.Deletion(random_one=True), T.Insertion(random_one=True))
    return Attack("deepwordbug", goal, T.CharacterTransformation(*edits),
                  [C.RepeatModification(), C.StopwordModification(res.stopwords),
                   C.MaxEditDistance(settings.max_edit_distance)], GreedyWordSwapWIR("unk"))


@recipe("pruthi", label="Pruthi typos", changes="characters", access="black-box", reads=("pruthi_max_words",),
        reference="TextAttack pruthi_2019 (arXiv 1905.11268)",
        departures=(PROJECT_STOPWORDS, "words changed: attack.pruthi_max_words (1 as TextAttack; the paper also 2)"))
def pruthi(goal, settings, res):
    """Pruthi et al. 2019: inner-character swap, deletion, insertion and every QWERTY-neighbour key, words of
    4+ letters, greedy (beam 1) over every candidate of every word."""
    inner = dict(skip_first=True, skip_last=True)
    edits = (T.NeighbouringSwap(**inner), T.Deletion(**inner), T.Insertion(**inner),
             T.TableSubstitution(res.qwerty, every_entry=True, **inner))
    return Attack("pruthi", goal, T.CharacterTransformation(*edits),
                  [C.RepeatModification(), C.StopwordModification(res.stopwords), C.MinWordLength(4),
                   C.MaxWordsPerturbed(settings.pruthi_max_words)], BeamSearch(width=1))


@recipe("textbugger_char", label="TextBugger (char)", changes="characters", access="black-box",
        reference="TextAttack textbugger_li_2018 (arXiv 1812.05271), its character bugs",
        departures=("no word bugs (GloVe nearest neighbours) and no Universal Sentence Encoder threshold 0.8: "
                    "neither is available offline",
                    "homoglyphs: several look-alikes per letter, one drawn at random per position (TextAttack: "
                    "one look-alike per character)", PROJECT_STOPWORDS))
def textbugger_char(goal, settings, res):
    """Li et al. 2019, character bugs only (insert a space, delete, swap inner characters, homoglyph)."""
    inner = dict(random_one=True, skip_first=True, skip_last=True)
    edits = (T.Insertion(letters=" ", **inner), T.Deletion(**inner), T.NeighbouringSwap(**inner),
             T.TableSubstitution(res.homoglyphs))
    return Attack("textbugger_char", goal, T.CharacterTransformation(*edits),
                  [C.RepeatModification(), C.StopwordModification(res.stopwords)], GreedyWordSwapWIR("delete"))


@recipe("hotflip", label="HotFlip (white-box)", changes="words", access="white-box",
        reads=("beam_width", "hotflip_max_words", "hotflip_min_cos_sim", "hotflip_candidates"),
        reference="TextAttack hotflip_ebrahimi_2017 (arXiv 1712.06751)",
        departures=("candidates: WordNet synonyms of the word (the part of speech of the synset they share) that "
                    "are one token where they stand, ranked by first-order gain, top attack.hotflip_candidates (1, "
                    "as TextAttack); TextAttack ranks the whole vocabulary, then requires counter-fitted cosine "
                    ">= 0.8 and the same part of speech in context (both downloads)",
                    "no part-of-speech tagging in context (NLTK's tagger is a download): WordNet does not say which "
                    "sense a word has in its sentence",
                    "optional cosine radius in the victim's own embedding table, attack.hotflip_min_cos_sim "
                    "(-1 = off; README says why)", PROJECT_STOPWORDS))
def hotflip(goal, settings, res):
    """Ebrahimi et al. 2018: first-order synonym flips, beam search, at most k words."""
    from kernels.attacks.whitebox import GradientWordSwap  # torch: only when a white-box recipe runs

    swap = GradientWordSwap(goal.victim, res.synonyms, settings.hotflip_min_cos_sim, settings.hotflip_candidates)
    return Attack("hotflip", goal, swap,
                  [C.RepeatModification(), C.StopwordModification(res.stopwords),
                   C.MaxWordsPerturbed(settings.hotflip_max_words)], BeamSearch(width=settings.beam_width))


@recipe("pwws", label="PWWS", changes="words", access="black-box",
        reference="TextAttack pwws_ren_2019 (Ren et al., ACL 2019)",
        departures=("weighted saliency: softmax of the unk saliency times the best drop of p(true label) a "
                    "synonym gives (the paper's delta p*); TextAttack multiplies by the best candidate's score "
                    "1 - p(true label) without subtracting the clean text's",
                    OWN_UNK, "a synonym keeps the capitalisation of the word it replaces", PROJECT_STOPWORDS))
def pwws(goal, settings, res):
    """Ren et al. 2019: WordNet synonyms, greedy over the weighted-saliency ranking, no stopword, no re-edit."""
    return Attack("pwws", goal, T.WordNetSwap(res.synonyms),
                  [C.RepeatModification(), C.StopwordModification(res.stopwords)],
                  GreedyWordSwapWIR("weighted-saliency"))


TRIGGER = Recipe(
    name=TRIGGER_RECIPE, label="Universal trigger (white-box)", changes="words", access="white-box",
    reference="Wallace et al. 2019 (arXiv 1908.07125; not a TextAttack recipe)",
    departures=("one trigger per target class, searched on held-out validation examples and prepended to "
                "text_a of every model's attacked examples (a transfer matrix)",
                "per trigger position only words that are one token there (the first word without the "
                "leading-space marker), and whole words only: a stopword or a word of the WordNet source, never a "
                "word beginning that is a token of its own (celebr)"))


def all_recipes() -> list[Recipe]:
    """Every recipe of the stage, the universal trigger (own rules) last."""
    return [*RECIPES.values(), TRIGGER]


def recipe_table_markdown() -> str:
    """README's recipe table: what each recipe changes and where it departs from its reference."""
    rows = ["| recipe | changes | access | follows | departures from it |", "|---|---|---|---|---|"]
    rows += [f"| `{r.name}` | {r.changes} | {r.access} | {r.reference} | {'; '.join(r.departures)} |"
             for r in all_recipes()]
    return "\n".join(rows)


def build_attack(recipe: str, victim, settings: AttackSettings, resources: AttackResources) -> Attack:
    if recipe not in RECIPES:
        raise ValueError(f"unknown attack recipe {recipe!r}; known: {sorted(RECIPES)} (and {TRIGGER_RECIPE!r}, "
                         "which has its own rules)")
    return RECIPES[recipe].build(UntargetedClassification(victim, settings.query_budget), settings, resources)
