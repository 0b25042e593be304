"""The tables the character-level recipes read: stopwords, visually similar characters (homoglyphs) and
QWERTY neighbours, shipped in ``resources/attacks`` (sources and licence in its README)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "resources" / "attacks"
STOPWORDS_FILE = "stopwords_en.txt"
HOMOGLYPHS_FILE = "homoglyphs.tsv"
QWERTY_FILE = "qwerty_neighbours.tsv"
RESOURCE_FILES = (STOPWORDS_FILE, HOMOGLYPHS_FILE, QWERTY_FILE)


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
class AttackResources:
    stopwords: frozenset[str]
    homoglyphs: dict[str, tuple[str, ...]]
    qwerty: dict[str, tuple[str, ...]]


def load_resources(directory: str | Path | None = None) -> AttackResources:
    root = Path(directory) if directory is not None else DEFAULT_DIR
    return AttackResources(stopwords=read_stopwords(root / STOPWORDS_FILE),
                           homoglyphs=read_char_table(root / HOMOGLYPHS_FILE),
                           qwerty=read_char_table(root / QWERTY_FILE))
