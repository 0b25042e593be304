"""GLUE readers: official TSV files in a bundled directory, or ``datasets.load_dataset`` from the hub.

Both return the normalised frame of :mod:`kernels.data.schema`, rows in source order.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pandas as pd

from .bundled import verify_bundled_file
from .schema import DataValidationError, glue_frame, validate_glue_rows
from .tasks import TaskSpec, get_task


def read_utf8(path: str | os.PathLike) -> str:
    """The text of ``path``; non-UTF-8 bytes raise an error naming the file, line and byte offset."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataValidationError(
            f"{path}: not valid UTF-8 at byte {err.start} (line {line}): {data[err.start:err.start + 4]!r}"
        ) from None


def read_tsv_rows(path: str | os.PathLike) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a GLUE TSV, read with quoting off.

    GLUE fields contain unbalanced ``"``; with csv quoting on, QNLI loses rows (see the data
    README). HF's own GLUE loader also reads with QUOTE_NONE.
    """
    text = read_utf8(path)
    if not text.strip():
        raise DataValidationError(f"{path}: empty file (expected a header line and data rows)")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader)
    rows = []
    for line_number, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise DataValidationError(
                f"{path}: line {line_number} has {len(row)} tab-separated fields, header has {len(header)}"
            )
        rows.append(row)
    if not rows:
        raise DataValidationError(f"{path}: no data rows after the header")
    return header, rows


BOM = "\ufeff"


def _column_position(header: list[str], column: str, path) -> int:
    try:
        return header.index(column)
    except ValueError:
        # repr shows what the eye would not: a byte-order mark, tabs or spaces around a name
        shown = ", ".join(repr(name) for name in header)
        hint = ""
        if header and header[0].startswith(BOM):
            hint = (" -- the file starts with a UTF-8 byte-order mark (BOM, bytes EF BB BF, shown as '\\ufeff'); "
                    "save it as UTF-8 without BOM")
        raise DataValidationError(
            f"{path}: missing column {column!r} (header: {shown}){hint}"
        ) from None


def _label_ids(values: list[str], spec: TaskSpec, path) -> list[int]:
    lookup = {value: label_id for label_id, value in enumerate(spec.tsv_label_values)}
    ids = []
    for row, value in enumerate(values):
        if value not in lookup:
            raise DataValidationError(
                f"{path}: line {row + 2}: column {spec.tsv_label_column!r} has label {value!r}, "
                f"out of range for {spec.name!r} (expected one of {', '.join(spec.tsv_label_values)})"
            )
        ids.append(lookup[value])
    return ids


def _row_indices(header, rows, spec: TaskSpec, path) -> list[int]:
    if spec.tsv_index_column is None:
        return list(range(len(rows)))  # HF numbers SST-2 rows the same way
    position = _column_position(header, spec.tsv_index_column, path)
    indices = []
    for row_number, row in enumerate(rows):
        try:
            indices.append(int(row[position]))
        except ValueError:
            raise DataValidationError(
                f"{path}: line {row_number + 2}: column {spec.tsv_index_column!r} is not an integer: "
                f"{row[position]!r}"
            ) from None
    return indices


def read_glue_tsv(path: str | os.PathLike, task: str) -> pd.DataFrame:
    """Normalise one official GLUE TSV of ``task`` (texts kept verbatim, labels as HF ids)."""
    spec = get_task(task)
    header, rows = read_tsv_rows(path)
    text_positions = [_column_position(header, column, path) for column in spec.tsv_text_columns]
    label_position = _column_position(header, spec.tsv_label_column, path)
    text_a = [row[text_positions[0]] for row in rows]
    text_b = [row[text_positions[1]] for row in rows] if spec.is_pair else [None] * len(rows)
    labels = _label_ids([row[label_position] for row in rows], spec, path)
    frame = glue_frame(_row_indices(header, rows, spec, path), text_a, text_b, labels)
    validate_glue_rows(frame, spec, str(path))
    return frame


def bundled_glue_path(bundled_dir: str | os.PathLike, task: str, split: str) -> Path:
    """``<bundled_dir>/glue/<task>/<split>.tsv``, or a clear error when that file is not bundled."""
    spec = get_task(task)
    if split not in spec.splits:
        raise ValueError(f"GLUE task {task!r} has no split {split!r}; splits: {', '.join(spec.splits)}")
    path = Path(bundled_dir) / "glue" / task / f"{split}.tsv"
    if not path.is_file():
        raise FileNotFoundError(
            f"GLUE {task} {split} is not bundled (no {path}). Only the tasks listed in "
            f"resources/data/README.md are bundled; set `data.source: hub` in the config to load "
            f"{task} from the Hugging Face hub (nyu-mll/glue), or put the official GLUE TSV there."
        )
    return path


def read_bundled_glue(bundled_dir: str | os.PathLike, task: str, split: str) -> pd.DataFrame:
    """A bundled GLUE split, verified against the directory's SHA256SUMS first."""
    path = bundled_glue_path(bundled_dir, task, split)
    verify_bundled_file(bundled_dir, path)
    return read_glue_tsv(path, task)


def check_hub_features(dataset, spec: TaskSpec, source: str) -> None:
    columns = set(dataset.column_names)
    for column in spec.text_fields + ("label", "idx"):
        if column not in columns:
            raise DataValidationError(
                f"{source}: missing column {column!r} (columns: {', '.join(dataset.column_names)})"
            )
    names = getattr(dataset.features["label"], "names", None)
    if names is not None and tuple(names) != spec.label_names:
        raise DataValidationError(
            f"{source}: column 'label' has names {list(names)}, expected {list(spec.label_names)} "
            f"(label ids would mean different classes)"
        )


def hub_rows_to_frame(dataset, spec: TaskSpec, source: str) -> pd.DataFrame:
    """Normalise a loaded HF dataset (GLUE or AdvGLUE layout) to the GLUE frame, unvalidated."""
    check_hub_features(dataset, spec, source)
    text_a = dataset[spec.text_fields[0]]
    text_b = dataset[spec.text_fields[1]] if spec.is_pair else [None] * len(dataset)
    return glue_frame(dataset["idx"], text_a, text_b, dataset["label"])


def load_hub_split(hub_id: str, config: str, split: str, revision: str | None):
    """``datasets.load_dataset(hub_id, config, split=split, revision=revision)``.

    ``hub_id`` may also be a local directory in the hub layout (how the tests exercise this path).
    No remote code: datasets >= 4 loads only data files (parquet) and has no loading scripts.
    """
    import datasets  # imported here: the bundled path should not pay for it

    return datasets.load_dataset(hub_id, config, split=split, revision=revision)


def read_hub_glue(hub_id: str, task: str, split: str, revision: str | None = None) -> pd.DataFrame:
    """Normalise ``load_dataset(hub_id, task, split=split, revision=revision)``."""
    spec = get_task(task)
    if split not in spec.splits:
        raise ValueError(f"GLUE task {task!r} has no split {split!r}; splits: {', '.join(spec.splits)}")
    source = f"{hub_id} [{task}/{split}]"
    frame = hub_rows_to_frame(load_hub_split(hub_id, task, split, revision), spec, source)
    validate_glue_rows(frame, spec, source)
    return frame
