"""GLUE and AdvGLUE data: task table, readers (bundled files or hub), normalised parquet tables."""

from .advglue import fetch_annotations, join_annotations, read_bundled_advglue, read_hub_advglue
from .glue import read_bundled_glue, read_glue_tsv, read_hub_glue
from .prepare import iter_texts, prepare_advglue, prepare_glue, read_glue_split
from .schema import (
    ADVGLUE_SCHEMA,
    GLUE_SCHEMA,
    DataValidationError,
    read_normalised,
    subset_rows,
    validate_advglue_rows,
    validate_glue_rows,
    write_advglue_parquet,
    write_glue_parquet,
)
from .tasks import ADVGLUE_HUB_CONFIGS, ADVGLUE_LEVELS, ADVGLUE_SETS, TASKS, TaskSpec, advglue_task, get_task

__all__ = [
    "ADVGLUE_HUB_CONFIGS",
    "ADVGLUE_LEVELS",
    "ADVGLUE_SCHEMA",
    "ADVGLUE_SETS",
    "DataValidationError",
    "GLUE_SCHEMA",
    "TASKS",
    "TaskSpec",
    "advglue_task",
    "fetch_annotations",
    "get_task",
    "iter_texts",
    "join_annotations",
    "prepare_advglue",
    "prepare_glue",
    "read_bundled_advglue",
    "read_bundled_glue",
    "read_glue_split",
    "read_glue_tsv",
    "read_hub_advglue",
    "read_hub_glue",
    "read_normalised",
    "subset_rows",
    "validate_advglue_rows",
    "validate_glue_rows",
    "write_advglue_parquet",
    "write_glue_parquet",
]
