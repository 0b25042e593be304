# Evaluation: GLUE validation metrics and AdvGLUE accuracy (by set, attack level and method, plus the
# clean originals) per fine-tuned model; the official AdvGLUE predictions file and score per model and
# seed; tidy tables for the report, with exact McNemar tests between every two models.


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        predictions=eval_file("{model}", "{task}", "{seed}", "predictions.parquet"),
        metrics=eval_file("{model}", "{task}", "{seed}", "metrics.json"),
    log:
        "logs/evaluate/{model}/{task}/seed{seed}.log",
    # before the attacks: the report's main chain (evaluate -> score -> tables) waits on it
    priority: 1
    conda:
        "../envs/torch.yaml"
    threads: config["evaluate"]["threads"]
    resources:
        mem_mb=resource_getter("evaluate", "mem_mb", 4000),
        runtime=resource_getter("evaluate", "runtime", 30),
        gpu=resource_getter("evaluate", "gpu", 0),
    params:
        family=lambda w: model_cfg(w.model)["family"],
        batch_size=config["evaluate"]["batch_size"],
        bootstrap_samples=config["evaluate"]["bootstrap_samples"],
        max_length=lambda w: finetune_hp(w.model)["max_length"],
        device=lambda w: finetune_hp(w.model)["device"],
        # the training precision (autocast dtype), so that e.g. BitLinear quantises as it did in training
        dtype=lambda w: finetune_hp(w.model)["dtype"],
        force_torch=force_torch(),
        require_fla=require_fla(),
    script:
        "../workflow_scripts/evaluate_model.py"


rule advglue_score:
    input:
        predictions=lambda w: [
            eval_file(w.model, t, w.seed, "predictions.parquet") for t in TASK_LIST
        ],
        dev=[advglue_path(s) for s in ADVGLUE_SETS],
        code=kernel_sources("evaluation", "data"),
    output:
        predictions_json="results/eval/{model}/advglue_predictions_seed{seed}.json",
        score="results/eval/{model}/advglue_score_seed{seed}.json",
    log:
        "logs/advglue_score/{model}/seed{seed}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/advglue_score.py"


rule tables_eval:
    input:
        metrics=expand(
            eval_file("{model}", "{task}", "{seed}", "metrics.json"),
            model=SORTED_MODELS,
            task=SORTED_TASKS,
            seed=SORTED_SEEDS,
        ),
        scores=expand(
            "results/eval/{model}/advglue_score_seed{seed}.json",
            model=SORTED_MODELS,
            seed=SORTED_SEEDS,
        ),
        train_logs=expand(
            model_file("{model}", "{task}", "{seed}", "train_log.csv"),
            model=SORTED_MODELS,
            task=SORTED_TASKS,
            seed=SORTED_SEEDS,
        ),
        predictions=expand(
            eval_file("{model}", "{task}", "{seed}", "predictions.parquet"),
            model=SORTED_MODELS,
            task=SORTED_TASKS,
            seed=SORTED_SEEDS,
        ),
        code=kernel_sources("evaluation"),
    output:
        metrics=report(
            "results/tables/metrics.csv",
            caption="report/metrics.rst",
            category="Tables",
        ),
        scores=report(
            "results/tables/advglue_scores.csv",
            caption="report/advglue_scores.rst",
            category="Tables",
        ),
        throughput="results/tables/finetune_throughput.csv",
        significance=report(
            "results/tables/pairwise_significance.csv",
            caption="report/significance.rst",
            category="Tables",
        ),
        robustness="results/tables/pairwise_robustness.csv",
    log:
        "logs/tables_eval.log",
    conda:
        "../envs/report.yaml"
    params:
        # in a fixed order, as the inputs: the tables do not depend on the config's model order
        models={m: model_cfg(m)["label"] for m in SORTED_MODELS},
    script:
        "../workflow_scripts/tables_eval.py"
