"""GLUE and AdvGLUE data: task table, readers (bundled files or hub), normalised parquet tables."""

from kernels._lazy import lazy_exports

# submodule -> its public names, imported on first use: `python -m kernels.data.bundled` then runs that
# module without the package having imported it first (which runpy warns about)
_EXPORTS = {
    "advglue": ["fetch_annotations", "join_annotations", "read_bundled_advglue", "read_hub_advglue"],
    "glue": ["read_bundled_glue", "read_glue_tsv", "read_hub_glue"],
    "prepare": ["iter_texts", "prepare_advglue", "prepare_glue", "read_glue_split"],
    "schema": ["ADVGLUE_SCHEMA", "GLUE_SCHEMA", "DataValidationError", "read_normalised", "subset_rows",
               "validate_advglue_rows", "validate_glue_rows", "write_advglue_parquet", "write_glue_parquet"],
    "tasks": ["ADVGLUE_HUB_CONFIGS", "ADVGLUE_LEVELS", "ADVGLUE_SETS", "TASKS", "TaskSpec", "advglue_task",
              "get_task"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
