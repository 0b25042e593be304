# The report: one self-contained HTML page with Altair charts, every chart also as SVG and PNG.

FIGURES = report_figure_names()
ATTACK_FIGURES = attack_figure_names()


rule build_report:
    input:
        metrics="results/tables/metrics.csv",
        scores="results/tables/advglue_scores.csv",
        throughput="results/tables/finetune_throughput.csv",
        efficiency="results/tables/efficiency.csv",
        slopes="results/tables/efficiency_slopes.csv",
        significance="results/tables/pairwise_significance.csv",
        robustness_significance="results/tables/pairwise_robustness.csv",
        train_data=[glue_split_path(task, "train") for task in TASK_LIST],
        attack_summaries=attack_result_files("summaries"),
        attack_lines=attack_result_files("lines"),
        attack_transfer=attack_result_files("transfer"),
        code=kernel_sources("report", "attacks/recipes"),  # the recipe table and labels
    output:
        html=report(
            "results/report/index.html", caption="report/index.rst", category="Report"
        ),
        figures=[
            report(
                f"results/report/figures/{name}.{ext}",
                caption="report/figure.rst",
                category="Figures",
                labels={"figure": name, "format": ext},
            )
            for name in FIGURES
            for ext in ("svg", "png")
        ],
        attack_figures=[
            report(
                f"results/report/figures/{name}.{ext}",
                caption="report/figure.rst",
                category="Figures",
                labels={"figure": name, "format": ext},
            )
            for name in ATTACK_FIGURES
            for ext in ("svg", "png")
        ],
    log:
        "logs/report.log",
    conda:
        "../envs/report.yaml"
    params:
        config=canonical(config),
        models={m: model_cfg(m)["label"] for m in MODELS},
        report=canonical(config["report"]),
    script:
        "../workflow_scripts/report.py"


rule report:
    # The default target (`all` too): every file of README's Outputs contract, so that a deleted one is
    # rebuilt by its job (and what reads it re-runs), never left missing behind an up-to-date report.
    input:
        rules.build_report.output,
        contract_outputs(),
