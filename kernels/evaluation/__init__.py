"""Evaluation of fine-tuned classifiers: predictions, metrics with bootstrap CIs (``evaluate``
documents predictions.parquet and metrics.json), the AdvGLUE official score (``advglue``), the
tidy result tables (``tables``) and paired significance tests between models (``significance``)."""

from kernels._lazy import lazy_exports

# submodule -> its public names; imported on first use (the table and report jobs then skip torch)
_EXPORTS = {
    "advglue": ["official_score", "score_prediction_files"],
    "evaluate": ["compute_metrics", "original_frame", "predict_all", "read_frames"],
    "metrics": ["accuracy", "binary_f1", "with_ci"],
    "predict": ["predict_encoded", "predict_frame"],
    "significance": ["check_metrics_match", "holm_adjust", "mcnemar_exact", "paired_items", "significance_table"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
