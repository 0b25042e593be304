"""The text under attack: one or two fields split into words and the separators between them.

Words are runs of letters and digits (with inner apostrophes or hyphens), as TextAttack's
``words_from_text``; everything else is kept verbatim as separators, so a perturbed text differs from the
original only inside the edited words. Both fields of a pair are attackable (TextAttack perturbs both;
AdvGLUE usually edits one): word indices run over ``text_a`` first, then ``text_b``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")


def _split(text: str) -> tuple[str, ...]:
    """``(sep0, word0, sep1, word1, ..., sepN)``."""
    pieces, last = [], 0
    for match in WORD.finditer(text):
        pieces += [text[last:match.start()], match.group()]
        last = match.end()
    pieces.append(text[last:])
    return tuple(pieces)


@dataclass(frozen=True)
class AttackedText:
    """An immutable (text_a, text_b) with the word indices edited so far."""

    pieces: tuple[tuple[str, ...], ...]
    original_words: tuple[str, ...]
    modified: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def from_pair(cls, text_a: str, text_b: str | None = None) -> "AttackedText":
        pieces = (_split(text_a),) if text_b is None else (_split(text_a), _split(text_b))
        words = tuple(w for p in pieces for w in p[1::2])
        return cls(pieces=pieces, original_words=words)

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(w for p in self.pieces for w in p[1::2])

    @property
    def num_words(self) -> int:
        return len(self.original_words)

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self.num_words:
            raise IndexError(f"word index {index} out of range (text has {self.num_words} words)")
        for number, pieces in enumerate(self.pieces):
            count = len(pieces) // 2
            if index < count:
                return number, 2 * index + 1
            index -= count
        raise AssertionError("unreachable")

    def replace_word(self, index: int, new_word: str, mark: bool = True) -> "AttackedText":
        """A copy with word ``index`` replaced; ``mark=False`` for probes (ranking) that are not edits."""
        number, position = self._locate(index)
        pieces = list(self.pieces)
        changed = list(pieces[number])
        changed[position] = new_word
        pieces[number] = tuple(changed)
        modified = self.modified | {index} if mark else self.modified
        return AttackedText(pieces=tuple(pieces), original_words=self.original_words, modified=modified)

    def word_span(self, index: int) -> tuple[int, int, int]:
        """``(field, start, end)``: character offsets of word ``index`` in its field's current text."""
        number, position = self._locate(index)
        pieces = self.pieces[number]
        start = sum(len(p) for p in pieces[:position])
        return number, start, start + len(pieces[position])

    @property
    def text_a(self) -> str:
        return "".join(self.pieces[0])

    @property
    def text_b(self) -> str | None:
        return "".join(self.pieces[1]) if len(self.pieces) > 1 else None

    @property
    def pair(self) -> tuple[str, str | None]:
        return self.text_a, self.text_b

    @property
    def words_changed(self) -> int:
        """Words that differ from the original (an edit that was later undone does not count)."""
        return sum(a != b for a, b in zip(self.words, self.original_words))


def levenshtein(first: str, second: str) -> int:
    """Edit distance (insert, delete, substitute one character, each cost 1)."""
    # A common prefix and suffix never change the distance; attacks edit a few words of long texts.
    start = 0
    while start < min(len(first), len(second)) and first[start] == second[start]:
        start += 1
    end = 0
    while (end < min(len(first), len(second)) - start
           and first[len(first) - 1 - end] == second[len(second) - 1 - end]):
        end += 1
    a, b = first[start:len(first) - end], second[start:len(second) - end]
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def text_distance(text: AttackedText, original: AttackedText) -> int:
    """Levenshtein distance of the whole text (both fields) from the original, as TextAttack's constraint."""
    return sum(levenshtein(a or "", b or "") for a, b in zip(text.pair, original.pair))
