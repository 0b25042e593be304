"""Snakemake script: tidy tables -> results/report/index.html and results/report/figures/{name}.svg|png.

input: ``metrics``, ``scores``, ``throughput``, ``efficiency``, ``slopes``, ``significance``,
``robustness_significance``, ``train_data`` (the
tasks' training parquet files: the data table shows their row counts), ``attack_summaries`` / ``attack_lines`` /
``attack_transfer`` (the attack stage's files: the "Fresh attacks" section); output: ``html``,
``figures`` (the SVG and PNG paths of ``kernels.report.FIGURES``), ``attack_figures`` (those of
``kernels.report.attacks.FIGURE_NAMES``, written by the same call); params: ``config``, ``models`` (name -> label),
``report`` (title, width, height).
"""


import argparse
import json
from pathlib import Path

import yaml

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.io import log_to
from kernels.report import FIGURES, build_report


def figures_dir_of(figures: list[str]) -> Path:
    """The one directory holding the expected figure files; anything else means the rule and FIGURES differ."""
    expected = {f"{name}.{ext}" for name in FIGURES for ext in ("svg", "png")}
    given = {Path(p).name for p in figures}
    parents = {Path(p).parent for p in figures}
    if given != expected or len(parents) != 1:
        raise ValueError(f"report output 'figures' must be {sorted(expected)} in one directory, got {sorted(figures)}")
    return parents.pop()


def main(metrics: str, scores: str, throughput: str, efficiency: str, slopes: str, html: str,
         figures: list[str], config: dict, models: dict, report: dict, significance: str | None = None,
         train_data: list[str] | None = None, attacks: dict[str, list] | None = None,
         robustness_significance: str | None = None) -> None:
    paths = dict(metrics=metrics, scores=scores, throughput=throughput, efficiency=efficiency, slopes=slopes,
                 significance=significance, robustness_significance=robustness_significance)
    notes = build_report(paths, html, figures_dir_of(list(figures)), config=config, models=models, settings=report,
                         train_data=train_data, attacks=attacks)
    for note in notes:
        print(f"[report] missing: {note}")


if "snakemake" in globals():
    smk = globals()["snakemake"]
    with log_to(smk.log[0] if len(smk.log) else None, outputs=smk.output):
        main(metrics=smk.input.metrics, scores=smk.input.scores, throughput=smk.input.throughput,
             efficiency=smk.input.efficiency, slopes=smk.input.slopes, significance=smk.input.significance,
             robustness_significance=smk.input.get("robustness_significance"), html=smk.output.html,
             figures=list(smk.output.figures), config=dict(smk.params.config), models=dict(smk.params.models),
             report=dict(smk.params.report), train_data=list(smk.input.get("train_data", [])),
             attacks=dict(summaries=list(smk.input.get("attack_summaries", [])),
                          transfer=list(smk.input.get("attack_transfer", []))))
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="results/tables", help="directory of the tidy tables")
    parser.add_argument("--out", default="results/report", help="report directory")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--attacks", default="results/attacks", help="directory of the attack stage's results")
    parser.add_argument("--train-data", nargs="*", default=[], help="results/data/glue/{task}/train.parquet files")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
    tables = Path(args.tables)
    main(metrics=str(tables / "metrics.csv"), scores=str(tables / "advglue_scores.csv"),
         throughput=str(tables / "finetune_throughput.csv"), efficiency=str(tables / "efficiency.csv"),
         slopes=str(tables / "efficiency_slopes.csv"), significance=str(tables / "pairwise_significance.csv"),
         robustness_significance=str(tables / "pairwise_robustness.csv"),
         html=str(Path(args.out) / "index.html"),
         figures=[str(Path(args.out) / "figures" / f"{n}.{e}") for n in FIGURES for e in ("svg", "png")],
         config=config, models={k: v.get("label", k) for k, v in config.get("models", {}).items()},
         report=config.get("report", {}), train_data=args.train_data,
         attacks=dict(summaries=sorted(Path(args.attacks).glob("*/*/seed*/*.json")),
                      transfer=sorted(Path(args.attacks).glob("transfer/*/seed*/universal_triggers.csv"))))
    print(json.dumps({"html": str(Path(args.out) / "index.html")}))
