"""The GLUE tasks studied and the AdvGLUE sets each is evaluated on.

Label ids follow the Hugging Face ``nyu-mll/glue`` ClassLabel order, which AdvGLUE also uses, so a
model fine-tuned on GLUE can be scored on AdvGLUE without remapping.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """Everything the workflow needs to know about one GLUE task."""

    name: str
    text_fields: tuple[str, ...]          # HF / AdvGLUE field names: text_a, then text_b if a pair task
    label_names: tuple[str, ...]          # in HF ClassLabel order: position = label id
    eval_splits: tuple[str, ...]          # GLUE splits the fine-tuned model is evaluated on
    advglue_sets: tuple[str, ...]         # AdvGLUE dev sets scored with this task's model
    metrics: tuple[str, ...]              # GLUE metrics, as in the AdvGLUE authors' evaluate.py
    # Layout of the official GLUE TSV files (what a "bundled" directory holds).
    tsv_text_columns: tuple[str, ...]
    tsv_label_column: str
    tsv_label_values: tuple[str, ...]     # value in the file at position i means label id i
    tsv_index_column: str | None          # None: idx is the row number (as HF does)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return len(self.text_fields) == 2

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train",) + self.eval_splits


TASKS: dict[str, TaskSpec] = {
    "sst2": TaskSpec(
        name="sst2",
        text_fields=("sentence",),
        label_names=("negative", "positive"),
        eval_splits=("validation",),
        advglue_sets=("sst2",),
        metrics=("accuracy",),
        tsv_text_columns=("sentence",),
        tsv_label_column="label",
        tsv_label_values=("0", "1"),
        tsv_index_column=None,
    ),
    "qqp": TaskSpec(
        name="qqp",
        text_fields=("question1", "question2"),
        label_names=("not_duplicate", "duplicate"),
        eval_splits=("validation",),
        advglue_sets=("qqp",),
        metrics=("accuracy", "f1"),
        tsv_text_columns=("question1", "question2"),
        tsv_label_column="is_duplicate",
        tsv_label_values=("0", "1"),
        # HF numbers QQP rows itself; the file's `id` column is not 0..n-1 after QQP-clean.
        tsv_index_column=None,
    ),
    "mnli": TaskSpec(
        name="mnli",
        text_fields=("premise", "hypothesis"),
        label_names=("entailment", "neutral", "contradiction"),
        eval_splits=("validation_matched", "validation_mismatched"),
        advglue_sets=("mnli", "mnli-mm"),
        metrics=("accuracy",),
        tsv_text_columns=("sentence1", "sentence2"),
        tsv_label_column="gold_label",
        tsv_label_values=("entailment", "neutral", "contradiction"),
        tsv_index_column="index",
    ),
    "qnli": TaskSpec(
        name="qnli",
        text_fields=("question", "sentence"),
        label_names=("entailment", "not_entailment"),
        eval_splits=("validation",),
        advglue_sets=("qnli",),
        metrics=("accuracy",),
        tsv_text_columns=("question", "sentence"),
        tsv_label_column="label",
        tsv_label_values=("entailment", "not_entailment"),
        tsv_index_column="index",
    ),
    "rte": TaskSpec(
        name="rte",
        text_fields=("sentence1", "sentence2"),
        label_names=("entailment", "not_entailment"),
        eval_splits=("validation",),
        advglue_sets=("rte",),
        metrics=("accuracy",),
        tsv_text_columns=("sentence1", "sentence2"),
        tsv_label_column="label",
        tsv_label_values=("entailment", "not_entailment"),
        tsv_index_column="index",
    ),
}

# Order of the official AdvGLUE dev.json and of the official predictions file.
ADVGLUE_SETS: tuple[str, ...] = ("sst2", "qqp", "mnli", "mnli-mm", "qnli", "rte")

# Hub config of each AdvGLUE set in AI-Secure/adv_glue.
ADVGLUE_HUB_CONFIGS: dict[str, str] = {
    "sst2": "adv_sst2",
    "qqp": "adv_qqp",
    "mnli": "adv_mnli",
    "mnli-mm": "adv_mnli_mismatched",
    "qnli": "adv_qnli",
    "rte": "adv_rte",
}

ADVGLUE_LEVELS: tuple[str, ...] = ("word", "sentence", "human")


def get_task(task: str) -> TaskSpec:
    """The spec of ``task``, or a clear error listing the known tasks."""
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"unknown GLUE task {task!r}; known tasks: {', '.join(TASKS)}") from None


def advglue_task(adv_set: str) -> TaskSpec:
    """The GLUE task whose fine-tuned model is evaluated on AdvGLUE set ``adv_set``."""
    for spec in TASKS.values():
        if adv_set in spec.advglue_sets:
            return spec
    raise ValueError(f"unknown AdvGLUE set {adv_set!r}; known sets: {', '.join(ADVGLUE_SETS)}")
