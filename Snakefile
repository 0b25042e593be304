# Efficiency, task performance and adversarial robustness of efficient LLM architectures
# (Transformer++, GLA, MatMul-Free LM), after "Towards Resilient and Efficient LLMs" (arXiv 2408.04585).
#
#   snakemake --cores 2 report                                   # embedded default: offline, CPU, tiny models
#   snakemake --cores 8 report --configfile config/paper.yaml    # paper scale: hub data, 1.3B checkpoints, GPU
#
# Stages talk only through the files listed in README.md ("Outputs").

from snakemake.utils import min_version, validate

min_version("9.0")


include: "rules/config_files.smk"


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


validate(config, os.path.join(workflow.basedir, "config", "schema.yaml"))


report: "rules/report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    model="[A-Za-z0-9_]+",
    task="|".join(TASKS),
    seed=r"\d+",


include: "rules/data.smk"
include: "rules/finetune.smk"
include: "rules/evaluate.smk"
include: "rules/profile.smk"
include: "rules/attack.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        rules.report.input,


# Run where Snakemake runs (not as cluster jobs): the targets, and the attack summaries (a second or two of
# numpy each; a SLURM job apiece would cost more in queueing than in computing).
localrules:
    all,
    report,
    attack_summary,
