"""Transformations: what may replace a word. Character edits of one word (TextAttack's ``WordSwap*``
character transformations) and their composition, and WordNet synonyms (``WordNetSwap``, PWWS's); the
gradient-guided word swap is in ``whitebox``.

Each character edit lists candidate spellings of a word; ``random_one`` keeps one of them at random, as
TextAttack's ``random_one=True``. Positions skip the first / last character when asked (Pruthi et al. and
TextBugger keep them, so that the word stays readable). Random choices come from the generator the
search passes in (one per attacked example, seeded), so the same seed gives the same candidates.
"""

from __future__ import annotations

import string

import numpy as np

from kernels.attacks.text import AttackedText

LETTERS = string.ascii_lowercase


class CharacterEdit:
    def __init__(self, random_one: bool = False, skip_first: bool = False, skip_last: bool = False):
        self.random_one = random_one
        self.skip_first = skip_first
        self.skip_last = skip_last

    def positions(self, word: str) -> range:
        return range(1 if self.skip_first else 0, len(word) - 1 if self.skip_last else len(word))

    def edits(self, word: str, rng: np.random.Generator) -> list[str]:
        raise NotImplementedError

    def __call__(self, word: str, rng: np.random.Generator) -> list[str]:
        found = [w for w in self.edits(word, rng) if w != word]
        if self.random_one and found:
            return [found[int(rng.integers(len(found)))]]
        return found


def _same_case(replacement: str, original: str) -> str:
    return replacement.upper() if original.isupper() else replacement


class NeighbouringSwap(CharacterEdit):
    """Swap two neighbouring characters."""

    def edits(self, word, rng):
        span = self.positions(word)
        return [word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in span if i + 1 < span.stop]


class RandomSubstitution(CharacterEdit):
    """Replace a character by a random letter."""

    def edits(self, word, rng):
        return [word[:i] + _same_case(LETTERS[int(rng.integers(26))], word[i]) + word[i + 1:]
                for i in self.positions(word)]


class Deletion(CharacterEdit):
    """Delete a character."""

    def edits(self, word, rng):
        return [word[:i] + word[i + 1:] for i in self.positions(word)] if len(word) > 1 else []


class Insertion(CharacterEdit):
    """Insert a random character of ``letters`` before a position (``letters=" "``: TextBugger's split)."""

    def __init__(self, letters: str = LETTERS, **kwargs):
        super().__init__(**kwargs)
        self.letters = letters

    def edits(self, word, rng):
        return [word[:i] + self.letters[int(rng.integers(len(self.letters)))] + word[i:]
                for i in self.positions(word)]


class TableSubstitution(CharacterEdit):
    """Replace a character by an entry of its row in a table (QWERTY neighbours, homoglyphs): every entry
    (``every_entry=True``, TextAttack's WordSwapQWERTY with ``random_one=False``, as its Pruthi recipe) or one
    random entry per position."""

    def __init__(self, table: dict[str, tuple[str, ...]], every_entry: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.table = table
        self.every_entry = every_entry

    def edits(self, word, rng):
        out = []
        for i in self.positions(word):
            choices = self.table.get(word[i].lower())
            if not choices:
                continue
            picked = choices if self.every_entry else (choices[int(rng.integers(len(choices)))],)
            out += [word[:i] + _same_case(choice, word[i]) + word[i + 1:] for choice in picked]
        return out


class CharacterTransformation:
    """Candidates for the words at given indices: every spelling each edit proposes, in edit order."""

    def __init__(self, *edits: CharacterEdit):
        self.edits = edits

    def __call__(self, text: AttackedText, indices, rng: np.random.Generator, label: int | None = None
                 ) -> list[AttackedText]:
        out = []
        for index in indices:
            word = text.words[index]
            spellings: dict[str, None] = {}
            for edit in self.edits:
                spellings.update(dict.fromkeys(edit(word, rng)))
            out += [text.replace_word(index, spelling) for spelling in spellings]
        return out


class WordNetSwap:
    """Replace a word by each of its WordNet synonyms (TextAttack's WordSwapWordNet, PWWS's transformation),
    spelled with the word's capitalisation; ``synonyms`` is a kernels.attacks.wordnet source. ``uncovered``
    counts the words looked up that the source does not list (the bundled table covers the demo's data)."""

    def __init__(self, synonyms):
        self.synonyms = synonyms
        self.uncovered: set[str] = set()

    def __call__(self, text: AttackedText, indices, rng: np.random.Generator, label: int | None = None
                 ) -> list[AttackedText]:
        from kernels.attacks.wordnet import match_case

        out = []
        for index in indices:
            word = text.words[index]
            if not self.synonyms.covers(word):
                self.uncovered.add(word.lower())
            spellings = dict.fromkeys(match_case(s.word, word) for s in self.synonyms.synonyms(word))
            out += [text.replace_word(index, spelling) for spelling in spellings if spelling != word]
        return out
