# Data stage: GLUE train/validation and AdvGLUE dev (with the authors' annotations) normalised to the
# parquet schema in README.md, from the bundled copies (offline) or the Hugging Face hub; and the BPE
# tokenizer that from-scratch models share.


rule prepare_glue:
    input:
        code=kernel_sources("data"),
        bundled=bundled_glue_inputs,
    output:
        train=glue_split_path("{task}", "train"),
        validation=glue_split_path("{task}", "validation"),
    log:
        "logs/prepare_glue/{task}.log",
    wildcard_constraints:
        task="sst2|qqp|qnli|rte",
    conda:
        "../envs/data.yaml"
    params:
        **glue_data_params(),
    script:
        "../workflow_scripts/prepare_glue.py"


use rule prepare_glue as prepare_glue_mnli with:
    output:
        train=glue_split_path("{task}", "train"),
        validation_matched=glue_split_path("{task}", "validation_matched"),
        validation_mismatched=glue_split_path("{task}", "validation_mismatched"),
    wildcard_constraints:
        task="mnli",


rule prepare_advglue:
    input:
        code=kernel_sources("data"),
        bundled=bundled_files("advglue/dev.json", "advglue/dev_ann.json"),
    output:
        [advglue_path(s) for s in ADVGLUE_SETS],
    log:
        "logs/prepare_advglue.log",
    conda:
        "../envs/data.yaml"
    params:
        **advglue_data_params(),
    script:
        "../workflow_scripts/prepare_advglue.py"


rule train_tokenizer:
    input:
        # in a fixed order: the merges learnt can depend on the order of the texts, the config's order must not
        train=[glue_split_path(t, "train") for t in SORTED_TASKS],
        code=kernel_sources("tokenization"),
    output:
        tokenizer_json="results/tokenizer/tokenizer.json",
        tokenizer_config="results/tokenizer/tokenizer_config.json",
    log:
        "logs/train_tokenizer.log",
    conda:
        "../envs/data.yaml"
    params:
        vocab_size=config["tokenizer"]["vocab_size"],
        min_frequency=config["tokenizer"]["min_frequency"],
    script:
        "../workflow_scripts/train_tokenizer.py"
