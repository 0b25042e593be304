"""Untargeted classification goal with exact query counting, a cache and a hard query budget.

Definitions (TextAttack's, see the package docstring):
- score of a candidate = 1 - p(true label); success = the predicted label differs from the true label;
- an example whose clean prediction is already wrong is *skipped* (never attacked);
- **every candidate evaluated is one query, cache hits included**: the cache only saves model calls
  (``model_calls`` counts the texts the model really ran), it never makes a query free. The clean text
  counts as the first query, as in TextAttack.
- the budget truncates a candidate list: ``evaluate`` returns results only for the candidates that fit,
  so ``queries`` can never exceed ``query_budget``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from kernels.attacks.text import AttackedText


@dataclass(frozen=True)
class GoalResult:
    text: AttackedText
    probs: np.ndarray
    label: int

    @property
    def pred(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def score(self) -> float:
        return float(1.0 - self.probs[self.label])

    @property
    def succeeded(self) -> bool:
        return self.pred != self.label


class UntargetedClassification:
    def __init__(self, victim, query_budget: int, cache_size: int = 2 ** 16):
        if int(query_budget) < 1:
            raise ValueError(f"query_budget must be >= 1, got {query_budget}")
        self.victim = victim
        self.query_budget = int(query_budget)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.model_calls = 0            # over the goal's lifetime: texts the model actually ran
        self.start_example(0)

    def start_example(self, label: int) -> None:
        self.label = int(label)
        self._cache.clear()
        self.queries = 0
        self.cache_hits = 0              # queries of this example answered from the cache
        self.first_success_query: int | None = None

    @property
    def remaining(self) -> int:
        return self.query_budget - self.queries

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0

    def _probabilities(self, pairs: list[tuple]) -> list[np.ndarray]:
        missing = list(dict.fromkeys(p for p in pairs if p not in self._cache))
        if missing:
            for pair, probs in zip(missing, self.victim.probabilities(missing)):
                self._cache[pair] = probs
            self.model_calls += len(missing)
        # a text repeated within one list runs once: its repeats are cache hits, like any other
        self.cache_hits += len(pairs) - len(missing)
        out = []
        for pair in pairs:
            self._cache.move_to_end(pair)
            out.append(self._cache[pair])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def evaluate(self, texts: list[AttackedText], candidates: bool = True) -> list[GoalResult]:
        """Results for the longest prefix of ``texts`` that the budget allows (possibly none).

        ``candidates=False`` marks probes that are not adversarial candidates (the word-importance
        ranking's deletions): they cost queries but a probe that flips the label is not a success.
        """
        texts = texts[:max(self.remaining, 0)]
        if not texts:
            return []
        results = [GoalResult(text, probs, self.label)
                   for text, probs in zip(texts, self._probabilities([t.pair for t in texts]))]
        for offset, result in enumerate(results, start=1):
            if candidates and result.succeeded and self.first_success_query is None:
                self.first_success_query = self.queries + offset
        self.queries += len(texts)
        return results
