"""A config file checked before Snakemake reads it: YAML (or JSON) that does not parse is an error naming the
file, line and column, and a key given twice in one mapping (which YAML loaders silently resolve by keeping
the last one) is an error naming both lines. Snakemake's own message for a file it cannot parse names
neither the file nor the line.

Plain Python and PyYAML (which Snakemake itself needs): the workflow loads this file on its own when it
starts, and ``python -m kernels.configfile FILE...`` checks files by hand, e.g. a ``--configfile`` overlay
that Snakemake refused (Snakemake reads those before the workflow's code runs).
"""

from __future__ import annotations

import json
import os
import sys

import yaml


class ConfigFileError(ValueError):
    """A config file that cannot be read as intended; the message names the file and the line."""


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader (libyaml's when PyYAML has it: fast) that refuses a key given twice in one mapping."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: PyYAML reports it below
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"found key {key!r} a second time (first on line {first.line + 1}); a YAML loader keeps only the "
                "last one, so the first would be silently ignored", key_node.start_mark)
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _where(path: str, mark) -> str:
    return f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else path


def check_config_file(path: str | os.PathLike) -> None:
    """Raise :class:`ConfigFileError` naming ``path`` and the line unless it is a JSON or YAML mapping
    without repeated keys (JSON first, as Snakemake reads it)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: config file not found") from None
    except UnicodeDecodeError as err:
        raise ConfigFileError(f"{path}: not UTF-8 text (byte {err.start})") from None
    try:
        document = json.loads(text)
    except ValueError:
        try:
            document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            problem = " ".join(part for part in (err.context, err.problem) if part)
            raise ConfigFileError(f"{_where(path, mark)}: not valid YAML: {problem}"
                                  + ("" if "\t" not in text else " (the file contains tabs; YAML indents with "
                                                                    "spaces only)")) from None
        except yaml.YAMLError as err:
            raise ConfigFileError(f"{path}: not valid YAML: {err}") from None
    if document is not None and not isinstance(document, dict):
        raise ConfigFileError(f"{path}: a config file must be a mapping of keys at the top level, "
                              f"got {type(document).__name__}")


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    status = 0
    for path in paths:
        try:
            check_config_file(path)
            print(f"{path}: ok")
        except ConfigFileError as err:
            print(err, file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
