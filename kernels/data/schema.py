"""The normalised tables every later stage reads, their validation, subsetting and writing.

GLUE: ``idx:int64, text_a:str, text_b:str|null, label:int64``. AdvGLUE adds ``level:str``,
``method:str``, ``original_text_a:str|null``, ``original_text_b:str|null`` (see DESIGN.md).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kernels.io import atomic_path

from .tasks import ADVGLUE_LEVELS, TaskSpec


class DataValidationError(ValueError):
    """Input data that does not fit the expected layout; the message names the file and field."""


GLUE_SCHEMA = pa.schema(
    [
        pa.field("idx", pa.int64(), nullable=False),
        pa.field("text_a", pa.string(), nullable=False),
        pa.field("text_b", pa.string(), nullable=True),
        pa.field("label", pa.int64(), nullable=False),
    ]
)

ADVGLUE_SCHEMA = pa.schema(
    list(GLUE_SCHEMA)
    + [
        pa.field("level", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("original_text_a", pa.string(), nullable=True),
        pa.field("original_text_b", pa.string(), nullable=True),
    ]
)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _first_bad_row(frame: pd.DataFrame, mask) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def validate_glue_rows(frame: pd.DataFrame, spec: TaskSpec, source: str) -> None:
    """Check a normalised GLUE (or AdvGLUE) frame; ``source`` names the file or dataset in errors."""
    for column in GLUE_SCHEMA.names:
        if column not in frame.columns:
            raise DataValidationError(f"{source}: missing column {column!r}")
    if len(frame) == 0:
        raise DataValidationError(f"{source}: no rows (empty file or split)")

    # Only a missing value is an error: an empty string is still text the tokenizer can encode.
    missing_a = frame["text_a"].map(_is_missing)
    if missing_a.any():
        row = _first_bad_row(frame, missing_a)
        raise DataValidationError(
            f"{source}: row {row} (idx {frame['idx'].iloc[row]}): text_a "
            f"({spec.text_fields[0]!r}) is null"
        )
    not_text = frame["text_a"].map(lambda v: not isinstance(v, str)) | frame["text_b"].map(
        lambda v: not (_is_missing(v) or isinstance(v, str))
    )
    if not_text.any():
        row = _first_bad_row(frame, not_text)
        raise DataValidationError(
            f"{source}: row {row} (idx {frame['idx'].iloc[row]}): text_a/text_b must be strings, got "
            f"{frame['text_a'].iloc[row]!r} / {frame['text_b'].iloc[row]!r}"
        )
    missing_b = frame["text_b"].map(_is_missing)
    if spec.is_pair and missing_b.any():
        row = _first_bad_row(frame, missing_b)
        raise DataValidationError(
            f"{source}: row {row} (idx {frame['idx'].iloc[row]}): text_b "
            f"({spec.text_fields[1]!r}) is null in pair task {spec.name!r}"
        )
    if not spec.is_pair and not missing_b.all():
        raise DataValidationError(f"{source}: text_b must be null for single-text task {spec.name!r}")

    labels = frame["label"].to_numpy()
    out_of_range = (labels < 0) | (labels >= spec.num_labels)
    if out_of_range.any():
        row = _first_bad_row(frame, out_of_range)
        raise DataValidationError(
            f"{source}: row {row} (idx {frame['idx'].iloc[row]}): label {labels[row]} out of range "
            f"for {spec.name!r} (0..{spec.num_labels - 1}: {', '.join(spec.label_names)})"
        )

    duplicated = frame["idx"].duplicated()
    if duplicated.any():
        row = _first_bad_row(frame, duplicated)
        raise DataValidationError(f"{source}: row {row}: duplicate idx {frame['idx'].iloc[row]}")


def validate_advglue_rows(frame: pd.DataFrame, spec: TaskSpec, source: str) -> None:
    """GLUE checks plus the annotation columns: a known level and a method for every row."""
    validate_glue_rows(frame, spec, source)
    for column in ("level", "method", "original_text_a", "original_text_b"):
        if column not in frame.columns:
            raise DataValidationError(f"{source}: missing column {column!r}")
    unknown = ~frame["level"].isin(ADVGLUE_LEVELS)
    if unknown.any():
        row = _first_bad_row(frame, unknown)
        raise DataValidationError(
            f"{source}: row {row} (idx {frame['idx'].iloc[row]}): level {frame['level'].iloc[row]!r} "
            f"is not one of {', '.join(ADVGLUE_LEVELS)}"
        )


def with_contract_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """int64 ids and labels; text columns as object holding str or None.

    One representation everywhere (pandas 3 would otherwise infer its NaN-based string dtype for
    some columns and not for others), so frames from different readers compare equal.
    """
    out = frame.copy()
    for column in out.columns:
        if column in ("idx", "label"):
            out[column] = out[column].astype("int64")
        else:
            out[column] = pd.Series(
                [None if _is_missing(v) else v for v in out[column].tolist()], index=out.index, dtype=object
            )
    return out


def glue_frame(idx, text_a, text_b, label) -> pd.DataFrame:
    """Build a normalised GLUE frame with the contract's dtypes."""
    return with_contract_dtypes(
        pd.DataFrame({"idx": list(idx), "text_a": list(text_a), "text_b": list(text_b), "label": list(label)})
    )


def subset_rows(frame: pd.DataFrame, max_examples: int | None, seed: int) -> pd.DataFrame:
    """A seeded random subset of ``max_examples`` rows kept in source order (None: all rows).

    Uniform sampling (not stratified) so the subset's label balance reflects the split's.
    """
    if max_examples is None:
        return frame
    if isinstance(max_examples, bool) or not isinstance(max_examples, (int, np.integer)) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive integer or None, got {max_examples!r}")
    if max_examples >= len(frame):
        return frame
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(frame), size=int(max_examples), replace=False))
    return frame.iloc[chosen].reset_index(drop=True)


def _to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    columns = {}
    for field in schema:
        values = [None if _is_missing(v) else v for v in frame[field.name].tolist()]
        columns[field.name] = pa.array(values, type=field.type)
    return pa.Table.from_pydict(columns, schema=schema)


def write_glue_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write a normalised GLUE frame atomically with the explicit schema (text_b stays a string
    column even when every value is null, as for SST-2)."""
    _write_table(path, _to_table(frame, GLUE_SCHEMA))


def write_advglue_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    _write_table(path, _to_table(frame, ADVGLUE_SCHEMA))


def _write_table(path: str | os.PathLike, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_normalised(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by this module back with object text columns (nulls as None)."""
    table = pq.read_table(path)
    return with_contract_dtypes(pd.DataFrame({name: table.column(name).to_pylist() for name in table.column_names}))
