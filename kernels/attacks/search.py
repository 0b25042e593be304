"""Search methods: greedy over a word-importance ranking (DeepWordBug, TextBugger; PWWS with its
weighted saliency) and beam search (Pruthi's greedy search is beam width 1; HotFlip uses width 10). Each stops at the first success or when
the query budget is spent (the goal truncates every candidate list to the budget)."""

from __future__ import annotations

import numpy as np

from kernels.attacks.goal import GoalResult


def _best(results: list[GoalResult]) -> GoalResult:
    """The highest-scoring result, preferring a successful one; ties go to the first."""
    successful = [r for r in results if r.succeeded]
    pool = successful or results
    return pool[int(np.argmax([r.score for r in pool]))]


def softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


class GreedyWordSwapWIR:
    """Rank words, then edit them greedily in that order (TextAttack's GreedyWordSwapWIR).

    ``wir="unk"`` scores each word by the goal score with the word replaced by the tokenizer's own unknown
    token (one token in every vocabulary, unlike BERT's literal ``[UNK]``; a tokenizer without one falls
    back to deletion); ``wir="delete"`` deletes it. ``wir="weighted-saliency"`` is PWWS's (Ren et al. 2019):
    softmax over the words of that unk saliency, times the largest drop of p(true label) that a candidate
    of the word gives on the clean text (0 without candidates). Each probe and each ranking candidate is one
    query, but not an adversarial candidate (a flip found while ranking is not yet a success: the search
    still has to reach it); only words the constraints let the attack edit are ranked, as in TextAttack.
    """

    METHODS = ("unk", "delete", "weighted-saliency")

    def __init__(self, wir: str = "unk"):
        if wir not in self.METHODS:
            raise ValueError(f"wir must be one of {list(self.METHODS)}, got {wir!r}")
        self.wir = wir

    def _removal_scores(self, attack, current: GoalResult, indices: list[int]) -> np.ndarray | None:
        unk = attack.goal.victim.unk_token if self.wir != "delete" else None
        probes = [current.text.replace_word(i, unk or "", mark=False) for i in indices]
        results = attack.goal.evaluate(probes, candidates=False)
        if len(results) < len(probes):
            return None  # the budget ran out while ranking
        return np.asarray([r.score for r in results], dtype=np.float64)

    def _best_drops(self, attack, current: GoalResult, indices: list[int], rng) -> np.ndarray | None:
        """Per word, the largest increase of the goal score (= drop of p(true label)) among its candidates."""
        drops = []
        for index in indices:
            candidates = attack.candidates(current.text, current.text, [index], rng, current.label)
            results = attack.goal.evaluate(candidates, candidates=False)
            if len(results) < len(candidates):
                return None
            drops.append(max((r.score for r in results), default=current.score) - current.score)
        return np.asarray(drops, dtype=np.float64)

    def rank(self, attack, current: GoalResult, rng: np.random.Generator | None = None) -> list[int] | None:
        indices = attack.modifiable_indices(current.text)
        if not indices:
            return []
        scores = self._removal_scores(attack, current, indices)
        if scores is not None and self.wir == "weighted-saliency":
            drops = self._best_drops(attack, current, indices, rng)
            scores = None if drops is None else softmax(scores) * drops
        if scores is None:
            return None
        return [indices[i] for i in np.argsort(-scores, kind="stable")]

    def __call__(self, attack, initial: GoalResult, rng: np.random.Generator) -> GoalResult:
        order = self.rank(attack, initial, rng)
        current = initial
        for index in order or []:
            candidates = attack.candidates(current.text, initial.text, [index], rng, initial.label)
            if not candidates:
                continue
            results = attack.goal.evaluate(candidates)
            if not results:
                break
            best = _best(results)
            if best.succeeded:
                return best
            if best.score > current.score:
                current = best
            if attack.goal.exhausted:
                break
        return current


class BeamSearch:
    """Each step expands every beam member at every editable word and keeps the ``width`` best children."""

    def __init__(self, width: int = 1):
        if int(width) < 1:
            raise ValueError(f"beam width must be >= 1, got {width}")
        self.width = int(width)

    def __call__(self, attack, initial: GoalResult, rng: np.random.Generator) -> GoalResult:
        beam, best = [initial], initial
        while not best.succeeded and not attack.goal.exhausted:
            children = []
            for member in beam:
                children += attack.candidates(member.text, initial.text, range(member.text.num_words), rng,
                                              initial.label)
            if not children:
                break
            results = attack.goal.evaluate(children)
            if not results:
                break
            best = _best(results)
            order = np.argsort([-r.score for r in results], kind="stable")
            beam = [results[i] for i in order[:self.width]]
        return best
