"""WordNet synonyms for the word-substitution recipes (PWWS, HotFlip), offline.

Two sources, one interface (``synonyms(word) -> tuple[Synonym, ...]``), chosen by ``attack.wordnet.source``:

- ``bundled``: ``resources/attacks/wordnet_synonyms.tsv``, derived from WordNet 3.0 for every word of the
  bundled validation splits by ``python -m kernels.attacks.wordnet`` (see resources/attacks/README.md). At
  run time the product reads only that table; a word it does not list has no synonyms (counted).
- ``nltk``: the full WordNet through nltk's corpus reader (paper scale; nltk is the optional ``wordnet``
  extra): nltk's own data (``nltk.download("wordnet")``) or any WordNet 3.0 database directory
  (``attack.wordnet.dir``, e.g. Debian's ``/usr/share/wordnet``), opened in nltk's layout.

What a synonym is follows TextAttack's ``WordSwapWordNet`` (the transformation of its PWWS recipe): every
lemma name of every synset that nltk's ``synsets(word)`` returns (so base forms that morphy finds count:
``films`` -> ``movie``), one word only (no phrase joined by ``_``; one word of ``kernels.attacks.text``
too, so word indices never shift), different from the word. Each synonym carries the part of speech of
the synset it shares with the word (``n``, ``v``, ``a`` — satellite adjectives included —, ``r``): a
synonym and its word share that part of speech by construction. WordNet does not say which sense a word
has in its sentence; TextAttack's in-context POS check (NLTK's tagger, a download) is not available
offline, which README's recipe table states.

WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. (WordNet licence: see
resources/attacks/README.md, which carries the full notice.)
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from kernels.attacks.resources import DEFAULT_DIR, WORDNET_FILE as TABLE_FILE
from kernels.attacks.text import WORD, AttackedText

POS_NAMES = {"n": "noun", "v": "verb", "a": "adjective", "r": "adverb"}
SOURCES = ("bundled", "nltk")
# The 45 lexicographer file names of WordNet 3.0 (lexnames(5WN)), in file-number order: nltk's reader needs a
# `lexnames` file, which Debian's wordnet-base does not ship.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive "
    "noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity "
    "noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition "
    "verb.communication verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl").split()
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


class Synonym(NamedTuple):
    word: str
    pos: str  # n, v, a, r: the part of speech of the synset the synonym shares with the word


def match_case(synonym: str, word: str) -> str:
    """``synonym`` spelled with the capitalisation of the word it replaces (WordNet's lemmas are lower case)."""
    if len(word) > 1 and word.isupper():
        return synonym.upper()
    if word[:1].isupper():
        return synonym[:1].upper() + synonym[1:]
    return synonym


def is_one_word(text: str) -> bool:
    return WORD.fullmatch(text) is not None


def _grouped(pairs) -> tuple[Synonym, ...]:
    """Unique synonyms in a stable order: by part of speech (n, v, a, r), then alphabetically."""
    order = {pos: i for i, pos in enumerate(POS_NAMES)}
    return tuple(sorted(set(pairs), key=lambda s: (order[s.pos], s.word.lower(), s.word)))


# ------------------------------------------------------------------------------------ the bundled table

@dataclass(frozen=True)
class SynonymTable:
    """``word -> synonyms`` for a fixed vocabulary (every word of it is listed, with or without synonyms)."""

    entries: dict[str, tuple[Synonym, ...]]
    description: str

    def covers(self, word: str) -> bool:
        return word.lower() in self.entries

    def is_word(self, word: str) -> bool:
        """A word of the table's vocabulary (a complete word of the data it was made for)."""
        return self.covers(word)

    def synonyms(self, word: str) -> tuple[Synonym, ...]:
        return self.entries.get(word.lower(), ())


def format_table_line(word: str, synonyms: tuple[Synonym, ...]) -> str:
    """``word<TAB>pos:syn syn ...<TAB>pos:...`` (only the word when it has no synonym)."""
    fields = [word]
    for pos in POS_NAMES:
        words = [s.word for s in synonyms if s.pos == pos]
        if words:
            fields.append(f"{pos}:" + " ".join(words))
    return "\t".join(fields)


def read_synonym_table(path: str | Path) -> SynonymTable:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"WordNet synonym table {path} is missing (make it with python -m kernels.attacks.wordnet)")
    raw = path.read_bytes()
    entries: dict[str, tuple[Synonym, ...]] = {}
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        word, *fields = line.split("\t")
        if word != word.lower() or not is_one_word(word) or word in entries:
            raise ValueError(f"{path}, line {number}: expected a new lower-case word first, got {word!r}")
        pairs = []
        for field in fields:
            pos, _, words = field.partition(":")
            if pos not in POS_NAMES or not words.split() or not all(map(is_one_word, words.split())):
                raise ValueError(f"{path}, line {number}: expected 'pos:synonym synonym ...' with pos in "
                                 f"{list(POS_NAMES)}, got {field!r}")
            pairs += [Synonym(w, pos) for w in words.split()]
        entries[word] = _grouped(pairs)
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return SynonymTable(entries, f"bundled WordNet 3.0 table {path.name} ({len(entries)} words, sha256 {digest})")


# ------------------------------------------------------------------------------ the full WordNet (nltk)

def _nltk_layout(directory: Path) -> Path:
    """An nltk data root whose ``corpora/wordnet`` holds the WordNet database of ``directory``.

    nltk's reader refuses files outside its data roots (symbolic links included) and needs a ``lexnames``
    file, so a database elsewhere (Debian's /usr/share/wordnet) is copied into a private temporary root,
    removed when the process ends."""
    if directory.name == "wordnet" and directory.parent.name == "corpora" and (directory / "lexnames").is_file():
        return directory.parent.parent
    if (directory / "corpora" / "wordnet" / "lexnames").is_file():
        return directory
    missing = [name for name in ("index.noun", "data.noun", "index.verb", "data.verb", "index.adj", "data.adj",
                                 "index.adv", "data.adv") if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"attack.wordnet.dir {directory}: not a WordNet 3.0 database (missing {missing})")
    root = Path(tempfile.mkdtemp(prefix="wordnet-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    target = root / "corpora" / "wordnet"
    target.mkdir(parents=True)
    for path in directory.iterdir():
        if path.is_file():
            shutil.copyfile(path, target / path.name)
    if not (target / "lexnames").exists():
        (target / "lexnames").write_text("".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n"
                                                 for i, name in enumerate(LEXNAMES)))
    return root


def open_nltk_wordnet(directory: str | Path | None = None):
    """nltk's WordNet reader: nltk's own data when ``directory`` is None, else the database there."""
    try:
        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError as err:
        raise ImportError("attack.wordnet.source 'nltk' needs nltk (pip install 'resilient-efficient-llms[wordnet]')"
                          ) from err
    if directory is None:
        from nltk.corpus import wordnet
        try:
            wordnet.ensure_loaded()
        except LookupError as err:
            raise FileNotFoundError("attack.wordnet.source 'nltk': nltk's WordNet data is not installed "
                                    "(python -m nltk.downloader wordnet, or set attack.wordnet.dir to a WordNet 3.0 "
                                    "database such as /usr/share/wordnet)") from err
        return wordnet
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"attack.wordnet.dir {directory} is not a directory")
    root = _nltk_layout(directory.resolve())
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))

    class Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            # nltk maps the loaded WordNet's synsets to its 'wordnet' data for the multilingual (OMW) functions,
            # reading index.sense twice (most of the loading time): they are not used here.
            return None

    with warnings.catch_warnings():  # "multilingual functions are not available": not used here
        warnings.simplefilter("ignore", UserWarning)
        return Reader(str(root / "corpora" / "wordnet"), None)


def reader_synonyms(reader, word: str) -> tuple[Synonym, ...]:
    """TextAttack's WordSwapWordNet candidates of ``word`` with their synset's part of speech."""
    pairs = []
    for synset in reader.synsets(word):
        pos = "a" if synset.pos() == "s" else synset.pos()
        for lemma in synset.lemma_names():
            if lemma.lower() != word.lower() and "_" not in lemma and is_one_word(lemma):
                pairs.append(Synonym(lemma, pos))
    return _grouped(pairs)


class NltkWordNet:
    """The full WordNet (every word covered), through nltk's reader."""

    def __init__(self, directory: str | Path | None = None):
        import nltk

        self.reader = open_nltk_wordnet(directory)
        self.description = (f"WordNet {self.reader.get_version()} through nltk {nltk.__version__} "
                            f"({'nltk data' if directory is None else directory})")
        self._synonyms = lru_cache(maxsize=None)(lambda word: reader_synonyms(self.reader, word))

    def covers(self, word: str) -> bool:
        return True

    def is_word(self, word: str) -> bool:
        """A word WordNet knows (a lemma, or an inflection of one that morphy finds)."""
        return bool(self.reader.synsets(word.lower()))

    def synonyms(self, word: str) -> tuple[Synonym, ...]:
        return self._synonyms(word.lower())


@lru_cache(maxsize=None)
def nltk_wordnet(directory: str | None = None) -> NltkWordNet:
    """One reader per WordNet per process (opening one takes seconds)."""
    return NltkWordNet(directory)


def load_synonyms(source: str = "bundled", directory: str | Path | None = None,
                  resources_dir: str | Path | None = None):
    """The synonym source ``attack.wordnet`` selects."""
    if source == "bundled":
        return read_synonym_table(Path(resources_dir or DEFAULT_DIR) / TABLE_FILE)
    if source == "nltk":
        return nltk_wordnet(None if directory is None else str(directory))
    raise ValueError(f"attack.wordnet.source must be one of {list(SOURCES)}, got {source!r}")


# ------------------------------------------------------------------------------- checking attack outputs

def substitutions(text_a: str, text_b: str | None, perturbed_a: str, perturbed_b: str | None) -> list[tuple[str, str]]:
    """``(old, new)`` for every word that differs between a text and its perturbed version (same word count)."""
    before = AttackedText.from_pair(text_a, text_b).words
    after = AttackedText.from_pair(perturbed_a, perturbed_b).words
    if len(before) != len(after):
        return [(" ".join(before), " ".join(after))]  # not a word-for-word substitution
    return [(old, new) for old, new in zip(before, after) if old != new]


def non_synonym_substitutions(lines, synonyms) -> list[dict]:
    """The substitutions of successful attack lines (README's jsonl schema) that are no WordNet synonym of the
    word they replace: empty when every one is."""
    bad = []
    for line in lines:
        if line.get("status") != "successful":
            continue
        for old, new in substitutions(line["text_a"], line.get("text_b"), line["perturbed_text_a"],
                                      line.get("perturbed_text_b")):
            if new.lower() not in {s.word.lower() for s in synonyms.synonyms(old)}:
                bad.append({"idx": line["idx"], "old": old, "new": new})
    return bad


# ----------------------------------------------------------------------------- building the bundled table

def vocabulary(texts) -> list[str]:
    """The distinct lower-case words (kernels.attacks.text's word splitting) of ``texts``, sorted."""
    words = set()
    for text in texts:
        if text:
            words.update(w.lower() for w in AttackedText.from_pair(str(text)).words)
    return sorted(words)


def demo_vocabulary(bundled_dir: str | Path, tasks=("sst2", "rte")) -> list[str]:
    """Every word of the bundled validation splits of the tasks the embedded default can run."""
    from kernels.data.glue import read_bundled_glue

    texts = []
    for task in tasks:
        frame = read_bundled_glue(bundled_dir, task, "validation")
        texts += list(frame["text_a"]) + list(frame["text_b"].dropna() if "text_b" in frame else [])
    return vocabulary(texts)


def table_text(reader, words, header: list[str]) -> str:
    lines = [f"# {line}" if line else "#" for line in header]
    lines += [format_table_line(word, reader_synonyms(reader, word)) for word in words]
    return "\n".join(lines) + "\n"


TABLE_HEADER = """\
WordNet synonyms of every word of the bundled SST-2 and RTE validation splits (kernels/attacks/wordnet.py):
one line per word, then per part of speech (n noun, v verb, a adjective, r adverb) the lemma names of the
synsets nltk's WordNet reader returns for it (TextAttack's WordSwapWordNet rule: one word, not the word).
Made by: python -m kernels.attacks.wordnet --wordnet-dir {wordnet_dir} (WordNet {version}, nltk {nltk}).

Derived from WordNet 3.0. WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR
WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON UNIVERSITY MAKES NO
REPRESENTATIONS OR WARRANTIES OF MERCHANTABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF
THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS,
TRADEMARKS OR OTHER RIGHTS. The full licence is in resources/attacks/README.md."""


def main(argv=None) -> None:
    import nltk

    from kernels.io import write_text

    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description="Write the bundled WordNet synonym table for the demo vocabulary.")
    parser.add_argument("--wordnet-dir", default="/usr/share/wordnet",
                        help="a WordNet 3.0 database (Debian's wordnet-base: /usr/share/wordnet)")
    parser.add_argument("--data", default=str(repo / "resources" / "data"), help="the bundled data directory")
    parser.add_argument("--out", default=str(repo / "resources" / "attacks" / TABLE_FILE))
    args = parser.parse_args(argv)
    reader = open_nltk_wordnet(args.wordnet_dir)
    words = demo_vocabulary(args.data)
    header = TABLE_HEADER.format(wordnet_dir=args.wordnet_dir, version=reader.get_version(),
                                 nltk=nltk.__version__).splitlines()
    write_text(args.out, table_text(reader, words, header))
    print(f"{args.out}: {len(words)} words")


if __name__ == "__main__":
    main()
