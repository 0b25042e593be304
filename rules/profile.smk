# Efficiency profiling per model: train step, prefill and per-token decode latency, throughput and peak
# memory over a grid of sequence lengths and batch sizes.
#
# A profile job must run with nothing else on the machine: a fine-tune or another profile beside it would
# share cores, caches and memory bandwidth and distort every latency. Locally it therefore reserves every
# core of the run (Snakemake then starts nothing beside it), while computing with config profile.threads
# only; on a cluster it asks for an exclusive node (slurm_extra="--exclusive", overridable with
# profile.resources.slurm_extra) and its own threads.


rule profile:
    input:
        code=kernel_sources(*MODEL_CODE, "profiling"),
    output:
        csv="results/efficiency/{model}.csv",
    log:
        "logs/profile/{model}.log",
    conda:
        "../envs/torch.yaml"
    threads: profile_reserved_threads
    resources:
        mem_mb=resource_getter("profile", "mem_mb", 8000),
        runtime=resource_getter("profile", "runtime", 30),
        gpu=resource_getter("profile", "gpu", 0),
        slurm_extra=resource_getter("profile", "slurm_extra", "--exclusive"),
    params:
        model_name=lambda w: w.model,
        family=lambda w: model_cfg(w.model)["family"],
        arch=lambda w: scratch_only(w.model, canonical(model_cfg(w.model)["arch"])),
        pretrained=lambda w: model_cfg(w.model).get("pretrained"),
        revision=lambda w: pretrained_only(w.model, model_cfg(w.model).get("revision")),
        vocab_size=lambda w: profile_vocab_size(w.model),
        # the profile section only: train points take their optimizer settings from profile.lr,
        # profile.weight_decay and profile.max_grad_norm, not from finetune (see config/config.yaml)
        settings=canonical(
            {k: v for k, v in config["profile"].items() if k != "resources"}
        ),
        force_torch=force_torch(),
        require_fla=require_fla(),
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
