"""What the data rules do: read a source, normalise, subset, write the contract's parquet files."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow.parquet as pq

from .advglue import read_bundled_advglue, read_hub_advglue
from .glue import read_bundled_glue, read_hub_glue
from .schema import subset_rows, write_advglue_parquet, write_glue_parquet
from .tasks import ADVGLUE_SETS, get_task

SOURCES = ("bundled", "hub")


def _report(path, frame) -> None:
    counts = frame["label"].value_counts().sort_index()
    labels = ", ".join(f"{label}: {count}" for label, count in counts.items())
    print(f"wrote {path}: {len(frame)} rows (label counts {labels})", file=sys.stderr)


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"data source must be one of {', '.join(SOURCES)}, got {source!r}")


def read_glue_split(
    task: str,
    split: str,
    source: str,
    bundled_dir: str | os.PathLike | None = None,
    hub_dataset: str | None = None,
    revision: str | None = None,
):
    """The normalised frame of one GLUE split from the configured source."""
    _check_source(source)
    if source == "bundled":
        if not bundled_dir:
            raise ValueError("data source 'bundled' needs the bundled data directory (config data.bundled_dir)")
        return read_bundled_glue(bundled_dir, task, split)
    if not hub_dataset:
        raise ValueError("data source 'hub' needs the hub dataset id (config data.hub.glue)")
    return read_hub_glue(hub_dataset, task, split, revision)


def prepare_glue(
    task: str,
    outputs: Mapping[str, str | os.PathLike],
    source: str,
    bundled_dir: str | os.PathLike | None,
    hub_dataset: str | None,
    revision: str | None,
    max_train_examples: int | None,
    max_eval_examples: int | None,
    subset_seed: int,
) -> None:
    """Write ``outputs[split]`` for the train split and every evaluation split of ``task``.

    The train split is subset to ``max_train_examples`` and each evaluation split to
    ``max_eval_examples`` (None: all rows), each with the same seed, keeping source order.
    """
    spec = get_task(task)
    if set(outputs) != set(spec.splits):
        raise ValueError(
            f"GLUE {task}: outputs must be named {', '.join(spec.splits)}, got {', '.join(outputs) or 'none'}"
        )
    _check_source(source)
    # Read every split before writing any, so a missing split fails the job without partial outputs.
    frames = {split: read_glue_split(task, split, source, bundled_dir, hub_dataset, revision) for split in spec.splits}
    for split, frame in frames.items():
        limit = max_train_examples if split == "train" else max_eval_examples
        chosen = subset_rows(frame, limit, subset_seed)
        write_glue_parquet(outputs[split], chosen)
        _report(outputs[split], chosen)


def prepare_advglue(
    outputs: Sequence[str | os.PathLike],
    source: str,
    bundled_dir: str | os.PathLike | None,
    hub_dataset: str | None,
    annotations_url: str | None,
    revision: str | None,
    cache_dir: str | os.PathLike | None = None,
    annotations_sha256: str | None = None,
) -> None:
    """Write the six AdvGLUE dev sets; ``outputs`` are in ADVGLUE_SETS order, named ``<set>.parquet``.
    ``annotations_sha256`` pins the downloaded annotation file (hub source)."""
    if len(outputs) != len(ADVGLUE_SETS):
        raise ValueError(f"AdvGLUE: expected {len(ADVGLUE_SETS)} output paths ({', '.join(ADVGLUE_SETS)}), got {len(outputs)}")
    for name, path in zip(ADVGLUE_SETS, outputs):
        if Path(path).name != f"{name}.parquet":
            raise ValueError(f"AdvGLUE: output for set {name!r} must be named {name}.parquet, got {path}")
    _check_source(source)
    if source == "bundled":
        if not bundled_dir:
            raise ValueError("data source 'bundled' needs the bundled data directory (config data.bundled_dir)")
        frames = read_bundled_advglue(bundled_dir)
    else:
        if not hub_dataset or not annotations_url:
            raise ValueError(
                "data source 'hub' needs the AdvGLUE hub id and annotations URL "
                "(config data.hub.advglue and data.hub.advglue_annotations_url)"
            )
        frames = read_hub_advglue(hub_dataset, annotations_url, revision, cache_dir,
                                  annotations_sha256=annotations_sha256)
    for name, path in zip(ADVGLUE_SETS, outputs):
        write_advglue_parquet(path, frames[name])
        _report(path, frames[name])


def iter_texts(paths: Sequence[str | os.PathLike]) -> Iterator[str]:
    """text_a then text_b (when present) of every row of the given normalised parquet files."""
    for path in paths:
        table = pq.read_table(path, columns=["text_a", "text_b"])
        for text_a, text_b in zip(table.column("text_a").to_pylist(), table.column("text_b").to_pylist()):
            yield text_a
            if text_b is not None:
                yield text_b
