"""Tidy evaluation tables (rule ``tables_eval``): metrics.csv, advglue_scores.csv and
finetune_throughput.csv (columns documented in kernels/evaluation/tables.py) and, from the
predictions, pairwise_significance.csv (exact McNemar tests between every two models) and
pairwise_robustness.csv (paired randomisation tests of their attack success rates and robustness drops;
columns of both in kernels/evaluation/significance.py)."""


import argparse
import json

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.io import log_to
from kernels.evaluation.significance import check_runs_match, robustness_significance_table, significance_table
from kernels.evaluation.tables import metrics_table, scores_table, throughput_table
from kernels.io import write_csv


def model_labels(models: dict) -> dict[str, str]:
    """name -> display label, from ``{name: label}`` or the config's ``{name: {"label": ...}}``."""
    return {name: (value.get("label", name) if isinstance(value, dict) else str(value))
            for name, value in (models or {}).items()}


def main(metrics: list[str], scores: list[str], train_logs: list[str], models: dict,
         metrics_out: str, scores_out: str, throughput_out: str, predictions: list[str] | None = None,
         significance_out: str | None = None, robustness_out: str | None = None) -> None:
    labels = model_labels(models)
    if predictions:
        # metrics.json and predictions.parquet of a run must agree before both feed the report
        check_runs_match(metrics, predictions)
    write_csv(metrics_out, metrics_table(metrics, labels, predictions))
    write_csv(scores_out, scores_table(scores, labels))
    write_csv(throughput_out, throughput_table(train_logs, labels))
    frames: dict = {}  # each predictions.parquet read once for both pairwise tables
    if significance_out is not None:
        write_csv(significance_out, significance_table(predictions or [], frames=frames))
    if robustness_out is not None:
        write_csv(robustness_out, robustness_significance_table(predictions or [], frames=frames))


if "snakemake" in globals():
    sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
    with log_to(sm.log[0] if len(sm.log) else None, outputs=sm.output):
        main(metrics=list(sm.input.metrics), scores=list(sm.input.scores), train_logs=list(sm.input.train_logs),
             models=dict(sm.params.models), metrics_out=sm.output.metrics, scores_out=sm.output.scores,
             throughput_out=sm.output.throughput, predictions=list(sm.input.predictions),
             significance_out=sm.output.significance, robustness_out=sm.output.robustness)
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", nargs="*", default=[])
    parser.add_argument("--scores", nargs="*", default=[])
    parser.add_argument("--train-logs", nargs="*", default=[])
    parser.add_argument("--predictions", nargs="*", default=[])
    parser.add_argument("--models", default="{}", help="JSON dict name -> label")
    parser.add_argument("--out-dir", default="results/tables")
    args = parser.parse_args()
    main(args.metrics, args.scores, args.train_logs, json.loads(args.models),
         f"{args.out_dir}/metrics.csv", f"{args.out_dir}/advglue_scores.csv",
         f"{args.out_dir}/finetune_throughput.csv", predictions=args.predictions,
         significance_out=f"{args.out_dir}/pairwise_significance.csv",
         robustness_out=f"{args.out_dir}/pairwise_robustness.csv")
