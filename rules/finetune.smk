# Fine-tuning: one job per (model, task, seed). From-scratch models use the workflow's BPE tokenizer;
# pretrained ones bring their own.


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        config=model_file("{model}", "{task}", "{seed}", "config.json"),
        weights=model_file("{model}", "{task}", "{seed}", "model.safetensors"),
        tokenizer=model_file("{model}", "{task}", "{seed}", "tokenizer.json"),
        train_log=model_file("{model}", "{task}", "{seed}", "train_log.csv"),
        info=model_file("{model}", "{task}", "{seed}", "finetune_info.json"),
    log:
        "logs/finetune/{model}/{task}/seed{seed}.log",
    benchmark:
        "results/benchmarks/finetune/{model}/{task}/seed{seed}.tsv"
    # the longest stage first: cores kept on fine-tunes leave a short tail after the last one
    priority: 2
    conda:
        "../envs/torch.yaml"
    threads: lambda w: finetune_setting(w.model, "threads", 1)
    resources:
        mem_mb=resource_getter("finetune", "mem_mb", 4000),
        runtime=resource_getter("finetune", "runtime", 60),
        gpu=resource_getter("finetune", "gpu", 0),
    params:
        family=lambda w: model_cfg(w.model)["family"],
        arch=lambda w: scratch_only(w.model, canonical(model_cfg(w.model)["arch"])),
        pretrained=lambda w: model_cfg(w.model).get("pretrained"),
        revision=lambda w: pretrained_only(w.model, model_cfg(w.model).get("revision")),
        allow_pickle=lambda w: pretrained_only(
            w.model, model_cfg(w.model).get("allow_pickle", False)
        ),
        # hyper-parameters only (finetune_hp): the script reads checkpoint timing from the config
        hp=lambda w: finetune_hp(w.model),
        num_labels=lambda w: TASKS[w.task].num_labels,
        checkpoint_dir=lambda w: f"results/checkpoints/{w.model}/{w.task}/seed{w.seed}",
        # once the model is written its checkpoint goes, and so do the folders it leaves empty:
        # {task}, {model} and results/checkpoints itself
        checkpoint_prune_parents=3,
        force_torch=force_torch(),
        require_fla=require_fla(),
    script:
        "../workflow_scripts/finetune.py"
