"""The tables the recipes read: stopwords, visually similar characters (homoglyphs), QWERTY neighbours and
WordNet synonyms, shipped in ``resources/attacks`` (sources and licences in its README; the synonyms can
also come from the full WordNet, ``kernels.attacks.wordnet``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "resources" / "attacks"
STOPWORDS_FILE = "stopwords_en.txt"
HOMOGLYPHS_FILE = "homoglyphs.tsv"
QWERTY_FILE = "qwerty_neighbours.tsv"
WORDNET_FILE = "wordnet_synonyms.tsv"  # the bundled table (kernels.attacks.wordnet)
RESOURCE_FILES = (STOPWORDS_FILE, HOMOGLYPHS_FILE, QWERTY_FILE, WORDNET_FILE)


def _content_lines(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"attack resource {path} is missing")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip() and not line.startswith("#"):
            yield number, line.rstrip("\n")


def read_stopwords(path: str | Path) -> frozenset[str]:
    words = set()
    for number, line in _content_lines(Path(path)):
        word = line.strip()
        if word != word.lower() or " " in word:
            raise ValueError(f"{path}, line {number}: a stopword must be one lower-case word, got {word!r}")
        words.add(word)
    return frozenset(words)


def read_char_table(path: str | Path) -> dict[str, tuple[str, ...]]:
    """``character -> replacements`` from a ``char<TAB>replacement replacement ...`` file."""
    table: dict[str, tuple[str, ...]] = {}
    for number, line in _content_lines(Path(path)):
        parts = line.split("\t")
        if len(parts) != 2 or len(parts[0]) != 1 or not parts[1].split():
            raise ValueError(f"{path}, line {number}: expected 'character<TAB>replacements', got {line!r}")
        if parts[0] in table:
            raise ValueError(f"{path}, line {number}: character {parts[0]!r} is listed twice")
        table[parts[0]] = tuple(parts[1].split())
    return table


@dataclass(frozen=True)
class WordNetSettings:
    """``attack.wordnet``: ``bundled`` (the table in resources/attacks) or ``nltk`` (the full WordNet, from
    nltk's data or from the WordNet 3.0 database in ``dir``)."""

    source: str = "bundled"
    dir: str | None = None


@dataclass(frozen=True)
class AttackResources:
    stopwords: frozenset[str]
    homoglyphs: dict[str, tuple[str, ...]]
    qwerty: dict[str, tuple[str, ...]]
    directory: Path = DEFAULT_DIR
    wordnet: WordNetSettings = field(default_factory=WordNetSettings)
    synonym_source: Any = None        # a ready synonym source; None: the one ``wordnet`` selects

    @cached_property
    def synonyms(self):
        """The WordNet synonym source, loaded when a word-level recipe first asks (the full WordNet takes seconds)."""
        from kernels.attacks.wordnet import load_synonyms

        if self.synonym_source is not None:
            return self.synonym_source
        return load_synonyms(self.wordnet.source, self.wordnet.dir, self.directory)


def load_resources(directory: str | Path | None = None, wordnet: WordNetSettings | None = None) -> AttackResources:
    root = Path(directory) if directory is not None else DEFAULT_DIR
    return AttackResources(stopwords=read_stopwords(root / STOPWORDS_FILE),
                           homoglyphs=read_char_table(root / HOMOGLYPHS_FILE),
                           qwerty=read_char_table(root / QWERTY_FILE), directory=root,
                           wordnet=wordnet or WordNetSettings())
