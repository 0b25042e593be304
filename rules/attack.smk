# Fresh adversarial attacks (kernels/attacks): each recipe against each fine-tuned model on a seeded subset
# of its task's validation split, the universal trigger search per model, and the triggers' transfer matrix.


rule attack:
    input:
        unpack(attack_inputs),
        wordnet=attack_wordnet_inputs,
    output:
        jsonl="results/attacks/{model}/{task}/seed{seed}/{recipe}.jsonl",
        summary="results/attacks/{model}/{task}/seed{seed}/{recipe}.json",
    log:
        "logs/attack/{model}/{task}/seed{seed}/{recipe}.log",
    wildcard_constraints:
        recipe="|".join(ATTACK_RECIPE_REGISTRY),
    conda:
        "../envs/torch.yaml"
    threads: ATTACK.get("threads", 1)
    resources:
        mem_mb=resource_getter("attack", "mem_mb", 4000),
        runtime=resource_getter("attack", "runtime", 60),
        gpu=resource_getter("attack", "gpu", 0),
    params:
        attack=lambda w: attack_params(w.model),
        wordnet=lambda w: attack_wordnet(w.recipe),
        force_torch=force_torch(),
        require_fla=require_fla(),
    script:
        "../workflow_scripts/attack.py"


rule attack_trigger:
    input:
        unpack(attack_inputs),
        wordnet=attack_wordnet_inputs,
    output:
        "results/attacks/{model}/{task}/seed{seed}/universal_trigger.json",
    log:
        "logs/attack/{model}/{task}/seed{seed}/universal_trigger.log",
    conda:
        "../envs/torch.yaml"
    threads: ATTACK.get("threads", 1)
    resources:
        mem_mb=resource_getter("attack", "mem_mb", 4000),
        runtime=resource_getter("attack", "runtime", 60),
        gpu=resource_getter("attack", "gpu", 0),
    params:
        attack=lambda w: attack_params(w.model),
        wordnet=attack_wordnet(TRIGGER_RECIPE),
        force_torch=force_torch(),
        require_fla=require_fla(),
    script:
        "../workflow_scripts/attack.py"


rule trigger_transfer:
    input:
        triggers=expand(
            "results/attacks/{model}/{{task}}/seed{{seed}}/universal_trigger.json",
            model=MODELS,
        ),
        models=lambda w: [
            f for m in MODELS for f in attack_model_inputs(m, w.task, w.seed)
        ],
        split=lambda w: attack_split(w.task),
        code=kernel_sources(
            *MODEL_CODE, "attacks", "evaluation", "training", "tokenization"
        ),
    output:
        "results/attacks/transfer/{task}/seed{seed}/universal_triggers.csv",
    log:
        "logs/attack/transfer/{task}/seed{seed}.log",
    conda:
        "../envs/torch.yaml"
    threads: ATTACK.get("threads", 1)
    resources:
        mem_mb=resource_getter("attack", "mem_mb", 4000),
        runtime=resource_getter("attack", "runtime", 60),
        gpu=resource_getter("attack", "gpu", 0),
    params:
        models=MODELS,
        attack={m: attack_params(m) for m in MODELS},
        force_torch=force_torch(),
        require_fla=require_fla(),
    script:
        "../workflow_scripts/attack.py"
