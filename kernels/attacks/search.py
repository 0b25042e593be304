"""Search methods: greedy over a word-importance ranking (DeepWordBug, TextBugger) and beam search
(Pruthi's greedy search is beam width 1; HotFlip uses width 10). Each stops at the first success or when
the query budget is spent (the goal truncates every candidate list to the budget)."""

from __future__ import annotations

import numpy as np

from kernels.attacks.goal import GoalResult


def _best(results: list[GoalResult]) -> GoalResult:
    """The highest-scoring result, preferring a successful one; ties go to the first."""
    successful = [r for r in results if r.succeeded]
    pool = successful or results
    return pool[int(np.argmax([r.score for r in pool]))]


class GreedyWordSwapWIR:
    """Rank words by the goal score with the word removed, then edit them greedily in that order.

    ``wir="unk"`` replaces the word by the tokenizer's own unknown token (one token in every vocabulary,
    unlike BERT's literal ``[UNK]``); a tokenizer without one falls back to deletion. ``wir="delete"``
    deletes it. Each word is a probe (one query); only words the constraints let the attack edit are
    ranked, as in TextAttack.
    """

    def __init__(self, wir: str = "unk"):
        if wir not in ("unk", "delete"):
            raise ValueError(f"wir must be 'unk' or 'delete', got {wir!r}")
        self.wir = wir

    def rank(self, attack, current: GoalResult) -> list[int] | None:
        indices = attack.modifiable_indices(current.text)
        unk = attack.goal.victim.unk_token if self.wir == "unk" else None
        probes = [current.text.replace_word(i, unk or "", mark=False) for i in indices]
        results = attack.goal.evaluate(probes, candidates=False)
        if len(results) < len(probes):
            return None  # the budget ran out while ranking
        scores = np.asarray([r.score for r in results])
        return [indices[i] for i in np.argsort(-scores, kind="stable")]

    def __call__(self, attack, initial: GoalResult, rng: np.random.Generator) -> GoalResult:
        order = self.rank(attack, initial)
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
