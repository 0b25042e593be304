"""Constraints: which words may be edited (checked before transforming, as TextAttack's
pre-transformation constraints) and which candidates are kept (checked on the result)."""

from __future__ import annotations

from kernels.attacks.text import AttackedText, text_distance


class Constraint:
    def allows_index(self, text: AttackedText, index: int) -> bool:
        return True

    def allows(self, candidate: AttackedText, original: AttackedText) -> bool:
        return True


class RepeatModification(Constraint):
    """No word is edited twice."""

    def allows_index(self, text, index):
        return index not in text.modified


class StopwordModification(Constraint):
    def __init__(self, stopwords: frozenset[str]):
        self.stopwords = stopwords

    def allows_index(self, text, index):
        return text.original_words[index].lower() not in self.stopwords


class MinWordLength(Constraint):
    """Only words of at least ``length`` characters (Pruthi et al.: 4)."""

    def __init__(self, length: int):
        self.length = int(length)

    def allows_index(self, text, index):
        return len(text.original_words[index]) >= self.length


class MaxWordsPerturbed(Constraint):
    def __init__(self, max_words: int):
        if int(max_words) < 1:
            raise ValueError(f"max_words must be >= 1, got {max_words}")
        self.max_words = int(max_words)

    def allows_index(self, text, index):
        return index in text.modified or len(text.modified) < self.max_words

    def allows(self, candidate, original):
        return len(candidate.modified) <= self.max_words


class MaxEditDistance(Constraint):
    """Levenshtein distance of the whole text (both fields) from the original at most ``distance``."""

    def __init__(self, distance: int):
        self.distance = int(distance)

    def allows(self, candidate, original):
        return text_distance(candidate, original) <= self.distance
