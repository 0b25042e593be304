# Fresh adversarial attacks (kernels/attacks): each recipe against each fine-tuned model on a seeded subset
# of its task's validation split, the universal trigger search per model, and the triggers' transfer matrix.
# Each rule's params hold only the attack settings it reads (ATTACK_RULE_KEYS, ATTACK_RECIPE_KEYS in
# rules/common.smk): the search (`attack`) writes the per-example lines and its own record, and the summary
# with its bootstrap CIs is a cheap job of its own (`attack_summary`), so attack.bootstrap_samples never
# re-runs a search.


rule attack:
    input:
        unpack(attack_inputs),
        wordnet=attack_wordnet_inputs,
    output:
        jsonl="results/attacks/{model}/{task}/seed{seed}/{recipe}.jsonl",
        search="results/attacks/{model}/{task}/seed{seed}/{recipe}.search.json",
    log:
        "logs/attack/{model}/{task}/seed{seed}/{recipe}.log",
    wildcard_constraints:
        recipe=RECIPE_WILDCARD,
    conda:
        "../envs/torch.yaml"
    threads: ATTACK.get("threads", 1)
    resources:
        mem_mb=resource_getter("attack", "mem_mb", 4000),
        runtime=resource_getter("attack", "runtime", 60),
        gpu=resource_getter("attack", "gpu", 0),
    params:
        attack=lambda w: attack_params("attack", w.model, w.recipe),
        wordnet=lambda w: attack_wordnet(w.recipe),
        force_torch=force_torch(),
        require_fla=require_fla(),
    script:
        "../workflow_scripts/attack.py"


rule attack_summary:
    input:
        jsonl="results/attacks/{model}/{task}/seed{seed}/{recipe}.jsonl",
        search="results/attacks/{model}/{task}/seed{seed}/{recipe}.search.json",
        code=kernel_sources("attacks", "evaluation"),
    output:
        "results/attacks/{model}/{task}/seed{seed}/{recipe}.json",
    log:
        "logs/attack_summary/{model}/{task}/seed{seed}/{recipe}.log",
    wildcard_constraints:
        recipe=RECIPE_WILDCARD,
    conda:
        "../envs/torch.yaml"
    params:
        attack=lambda w: canonical(
            {k: ATTACK[k] for k in ATTACK_RULE_KEYS["attack_summary"] if k in ATTACK}
        ),
        # names only (their values are the search's): the settings the summary reports for this recipe
        settings_read=lambda w: sorted(attack_settings_read("attack", w.recipe)),
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
        attack=lambda w: attack_params("attack_trigger", w.model),
        wordnet=attack_wordnet(TRIGGER_RECIPE),
        force_torch=force_torch(),
        require_fla=require_fla(),
    script:
        "../workflow_scripts/attack.py"


rule trigger_transfer:
    input:
        # models in a fixed order: the matrix does not depend on the config's model order
        triggers=expand(
            "results/attacks/{model}/{{task}}/seed{{seed}}/universal_trigger.json",
            model=SORTED_MODELS,
        ),
        models=lambda w: [
            f for m in SORTED_MODELS for f in attack_model_inputs(m, w.task, w.seed)
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
        models=SORTED_MODELS,
        attack={m: attack_params("trigger_transfer", m) for m in SORTED_MODELS},
        force_torch=force_torch(),
        require_fla=require_fla(),
    script:
        "../workflow_scripts/attack.py"
