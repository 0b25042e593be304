"""Evaluation of fine-tuned classifiers: predictions, metrics with bootstrap CIs (``evaluate``
documents predictions.parquet and metrics.json), the AdvGLUE official score (``advglue``), the
tidy result tables (``tables``) and paired significance tests between models (``significance``)."""

from kernels.evaluation.advglue import official_score, score_prediction_files
from kernels.evaluation.evaluate import compute_metrics, original_frame, predict_all, read_frames
from kernels.evaluation.metrics import accuracy, binary_f1, with_ci
from kernels.evaluation.predict import predict_encoded, predict_frame
from kernels.evaluation.significance import (check_metrics_match, holm_adjust, mcnemar_exact, paired_items,
                                             significance_table)

__all__ = [
    "official_score", "score_prediction_files", "compute_metrics", "original_frame", "predict_all",
    "read_frames", "accuracy", "binary_f1", "with_ci", "predict_encoded", "predict_frame",
    "check_metrics_match", "holm_adjust", "mcnemar_exact", "paired_items", "significance_table",
]
