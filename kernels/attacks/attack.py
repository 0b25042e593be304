"""An attack = goal function + constraints + transformation + search (TextAttack's anatomy), and the
outcome of attacking one example."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.attacks.goal import GoalResult, UntargetedClassification
from kernels.attacks.text import AttackedText

SUCCESSFUL, FAILED, SKIPPED = "successful", "failed", "skipped"


@dataclass(frozen=True)
class AttackOutcome:
    original: GoalResult
    final: GoalResult
    status: str
    queries: int
    cache_hits: int
    first_success_query: int | None


class Attack:
    def __init__(self, name: str, goal: UntargetedClassification, transformation, constraints, search):
        self.name = name
        self.goal = goal
        self.transformation = transformation
        self.constraints = list(constraints)
        self.search = search

    def modifiable_indices(self, text: AttackedText) -> list[int]:
        return [i for i in range(text.num_words) if all(c.allows_index(text, i) for c in self.constraints)]

    def candidates(self, text: AttackedText, original: AttackedText, indices, rng: np.random.Generator,
                   label: int) -> list[AttackedText]:
        """Transformations of ``text`` at the allowed ones of ``indices`` that satisfy every constraint."""
        allowed = [i for i in indices if all(c.allows_index(text, i) for c in self.constraints)]
        if not allowed:
            return []
        found = self.transformation(text, allowed, rng, label=label)
        return [t for t in found if all(c.allows(t, original) for c in self.constraints)]

    def attack(self, text_a: str, text_b: str | None, label: int, rng: np.random.Generator) -> AttackOutcome:
        self.goal.start_example(label)
        text = AttackedText.from_pair(text_a, text_b)
        (original,) = self.goal.evaluate([text], candidates=False)
        if original.succeeded:
            final, status = original, SKIPPED
        else:
            final = self.search(self, original, rng)
            status = SUCCESSFUL if final.succeeded else FAILED
        return AttackOutcome(original=original, final=final, status=status, queries=self.goal.queries,
                             cache_hits=self.goal.cache_hits,
                             first_success_query=self.goal.first_success_query if status == SUCCESSFUL else None)
