# Efficiency profiling per model: train step, prefill and per-token decode latency, throughput and peak
# memory over a grid of sequence lengths and batch sizes.


rule profile:
    input:
        code=kernel_sources(*MODEL_CODE, "profiling"),
    output:
        csv="results/efficiency/{model}.csv",
    log:
        "logs/profile/{model}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["profile"]["threads"]
    resources:
        mem_mb=resource_getter("profile", "mem_mb", 8000),
        runtime=resource_getter("profile", "runtime", 30),
        gpu=resource_getter("profile", "gpu", 0),
    params:
        model_name=lambda w: w.model,
        family=lambda w: model_cfg(w.model)["family"],
        arch=lambda w: model_cfg(w.model)["arch"],
        pretrained=lambda w: model_cfg(w.model).get("pretrained"),
        revision=lambda w: model_cfg(w.model).get("revision"),
        vocab_size=lambda w: profile_vocab_size(w.model),
        settings={
            k: v
            for k, v in config["profile"].items()
            if k not in ("threads", "resources")
        },
        force_torch=force_torch(),
    script:
        "../workflow_scripts/profile_model.py"


rule tables_efficiency:
    input:
        csvs=expand("results/efficiency/{model}.csv", model=MODELS),
        code=kernel_sources("profiling"),
    output:
        efficiency=report(
            "results/tables/efficiency.csv",
            caption="report/efficiency.rst",
            category="Tables",
        ),
        slopes="results/tables/efficiency_slopes.csv",
    log:
        "logs/tables_efficiency.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/tables_efficiency.py"
