"""The recipes, each a few lines of goal + constraints + transformation + search (as TextAttack's
``attack_recipes``), with the offline substitutions documented in the package docstring."""

from __future__ import annotations

from dataclasses import dataclass

from kernels.attacks import constraints as C
from kernels.attacks import transformations as T
from kernels.attacks.attack import Attack
from kernels.attacks.goal import UntargetedClassification
from kernels.attacks.resources import AttackResources
from kernels.attacks.search import BeamSearch, GreedyWordSwapWIR
from kernels.attacks.whitebox import GradientWordSwap

TRIGGER_RECIPE = "universal_trigger"


@dataclass(frozen=True)
class AttackSettings:
    query_budget: int = 2000
    beam_width: int = 10              # HotFlip's beam
    max_edit_distance: int = 30       # DeepWordBug: Levenshtein distance of the whole text
    pruthi_max_words: int = 1         # Pruthi et al. also report 2
    hotflip_max_words: int = 2
    hotflip_min_cos_sim: float = 0.5  # radius in the victim's own embedding table
    hotflip_candidates: int = 10      # (word, token) swaps per beam member and step, by first-order gain


def deepwordbug(goal, settings, res):
    """Gao et al. 2018: one random swap / substitution / deletion / insertion per word, greedy over WIR (unk)."""
    edits = (T.NeighbouringSwap(random_one=True), T.RandomSubstitution(random_one=True),
             T.Deletion(random_one=True), T.Insertion(random_one=True))
    return Attack("deepwordbug", goal, T.CharacterTransformation(*edits),
                  [C.RepeatModification(), C.StopwordModification(res.stopwords),
                   C.MaxEditDistance(settings.max_edit_distance)], GreedyWordSwapWIR("unk"))


def pruthi(goal, settings, res):
    """Pruthi et al. 2019: inner-character swap, deletion, insertion and QWERTY-key typos, words of 4+ letters."""
    inner = dict(skip_first=True, skip_last=True)
    edits = (T.NeighbouringSwap(**inner), T.Deletion(**inner), T.Insertion(**inner),
             T.TableSubstitution(res.qwerty, **inner))
    return Attack("pruthi", goal, T.CharacterTransformation(*edits),
                  [C.RepeatModification(), C.StopwordModification(res.stopwords), C.MinWordLength(4),
                   C.MaxWordsPerturbed(settings.pruthi_max_words)], BeamSearch(width=1))


def textbugger_char(goal, settings, res):
    """Li et al. 2019, character bugs only (insert a space, delete, swap inner characters, homoglyph).
    Its word bugs need GloVe neighbours and a Universal Sentence Encoder: not available offline."""
    inner = dict(random_one=True, skip_first=True, skip_last=True)
    edits = (T.Insertion(letters=" ", **inner), T.Deletion(**inner), T.NeighbouringSwap(**inner),
             T.TableSubstitution(res.homoglyphs))
    return Attack("textbugger_char", goal, T.CharacterTransformation(*edits),
                  [C.RepeatModification(), C.StopwordModification(res.stopwords)], GreedyWordSwapWIR("delete"))


def hotflip(goal, settings, res):
    """Ebrahimi et al. 2018: first-order whole-word swaps within a cosine radius, beam search, at most k words."""
    swap = GradientWordSwap(goal.victim, settings.hotflip_min_cos_sim, settings.hotflip_candidates)
    return Attack("hotflip", goal, swap,
                  [C.RepeatModification(), C.StopwordModification(res.stopwords),
                   C.MaxWordsPerturbed(settings.hotflip_max_words)], BeamSearch(width=settings.beam_width))


RECIPES = {"deepwordbug": deepwordbug, "pruthi": pruthi, "textbugger_char": textbugger_char, "hotflip": hotflip}
WHITE_BOX = ("hotflip", TRIGGER_RECIPE)


def build_attack(recipe: str, victim, settings: AttackSettings, resources: AttackResources) -> Attack:
    if recipe not in RECIPES:
        raise ValueError(f"unknown attack recipe {recipe!r}; known: {sorted(RECIPES)} (and {TRIGGER_RECIPE!r}, "
                         "which has its own rules)")
    return RECIPES[recipe](UntargetedClassification(victim, settings.query_budget), settings, resources)
