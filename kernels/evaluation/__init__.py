"""Evaluation of fine-tuned classifiers: predictions, metrics with bootstrap CIs (``evaluate``
documents predictions.parquet and metrics.json), the AdvGLUE official score (``advglue``), the
tidy result tables (``tables``) and paired significance tests between models (``significance``)."""

from kernels._lazy import lazy_exports

# public name -> submodule; imported on first use (the table and report jobs then skip torch)
_EXPORTS = {
    "official_score": "advglue",
    "score_prediction_files": "advglue",
    "compute_metrics": "evaluate",
    "original_frame": "evaluate",
    "predict_all": "evaluate",
    "read_frames": "evaluate",
    "accuracy": "metrics",
    "binary_f1": "metrics",
    "with_ci": "metrics",
    "predict_encoded": "predict",
    "predict_frame": "predict",
    "check_metrics_match": "significance",
    "holm_adjust": "significance",
    "mcnemar_exact": "significance",
    "paired_items": "significance",
    "significance_table": "significance",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
