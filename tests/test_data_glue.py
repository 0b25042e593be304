"""Bundled GLUE files normalised to the DESIGN.md schema; counts from resources/data/README.md."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kernels.data import (
    ADVGLUE_SETS,
    TASKS,
    advglue_task,
    prepare_glue,
    read_bundled_glue,
    read_normalised,
    subset_rows,
)

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "data"

# (task, split) -> (rows, rows per label id), as in resources/data/README.md
EXPECTED_COUNTS = {
    ("sst2", "train"): (67349, [29780, 37569]),
    ("sst2", "validation"): (872, [428, 444]),
    ("rte", "train"): (2490, [1249, 1241]),
    ("rte", "validation"): (277, [146, 131]),
    ("qnli", "validation"): (5463, [2702, 2761]),
}


@pytest.fixture(scope="module")
def frames():
    return {key: read_bundled_glue(BUNDLED, *key) for key in EXPECTED_COUNTS}


def test_task_table_matches_hf_and_advglue():
    assert ADVGLUE_SETS == ("sst2", "qqp", "mnli", "mnli-mm", "qnli", "rte")
    assert TASKS["mnli"].num_labels == 3 and TASKS["mnli"].eval_splits == ("validation_matched", "validation_mismatched")
    assert TASKS["mnli"].advglue_sets == ("mnli", "mnli-mm")
    assert TASKS["qqp"].metrics == ("accuracy", "f1") and TASKS["rte"].metrics == ("accuracy",)
    assert TASKS["qqp"].text_fields == ("question1", "question2")
    assert TASKS["sst2"].label_names == ("negative", "positive")
    assert TASKS["rte"].label_names == ("entailment", "not_entailment")
    # Every AdvGLUE set is evaluated by exactly one task's model.
    assert sorted(s for spec in TASKS.values() for s in spec.advglue_sets) == sorted(ADVGLUE_SETS)
    assert advglue_task("mnli-mm").name == "mnli"


@pytest.mark.parametrize("key", list(EXPECTED_COUNTS))
def test_bundled_counts_and_schema(frames, key):
    frame = frames[key]
    rows, per_label = EXPECTED_COUNTS[key]
    assert len(frame) == rows
    assert frame["label"].value_counts().sort_index().tolist() == per_label
    assert list(frame.columns) == ["idx", "text_a", "text_b", "label"]
    assert str(frame["idx"].dtype) == "int64" and str(frame["label"].dtype) == "int64"
    assert frame["idx"].is_unique
    assert frame["text_a"].map(lambda t: isinstance(t, str) and t != "").all()
    if TASKS[key[0]].is_pair:
        assert frame["text_b"].map(lambda t: isinstance(t, str) and t != "").all()
    else:
        assert frame["text_b"].isna().all()


def test_sst2_keeps_trailing_space_and_row_number_idx(frames):
    frame = frames[("sst2", "train")]
    assert frame["text_a"].iloc[0] == "hide new secretions from the parental units "
    assert frame["label"].iloc[0] == 0
    assert frame["text_a"].str.endswith(" ").mean() > 0.99
    assert frame["idx"].tolist() == list(range(len(frame)))


def test_rte_labels_mapped_to_hf_ids(frames):
    frame = frames[("rte", "train")]
    # First rows of RTE train.tsv: not_entailment, entailment (HF: 0 entailment, 1 not_entailment).
    assert frame["label"].iloc[:2].tolist() == [1, 0]
    assert frame["text_a"].iloc[0] == "No Weapons of Mass Destruction Found in Iraq Yet."
    assert frame["text_b"].iloc[0] == "Weapons of Mass Destruction Found in Iraq."


def test_qnli_read_with_quoting_off_keeps_every_row(frames):
    frame = frames[("qnli", "validation")]
    # Fields with unbalanced double quotes must stay verbatim, not swallow the next lines.
    quoted = frame[frame["text_b"].str.count('"') % 2 == 1]
    assert len(quoted) > 0
    assert frame["text_b"].str.contains("\n").sum() == 0
    assert "\ufeff" in frame["text_b"].iloc[60]


def test_missing_task_points_to_hub(tmp_path):
    outputs = {"train": tmp_path / "train.parquet", "validation": tmp_path / "validation.parquet"}
    with pytest.raises(FileNotFoundError, match=r"GLUE qqp train is not bundled.*data.source: hub"):
        prepare_glue("qqp", outputs, "bundled", BUNDLED, None, None, None, None, 0)
    # QNLI validation is bundled but train is not: nothing may be written.
    with pytest.raises(FileNotFoundError, match="qnli train is not bundled"):
        prepare_glue("qnli", outputs, "bundled", BUNDLED, None, None, None, None, 0)
    assert not any(tmp_path.iterdir())


def test_subset_is_seeded_and_keeps_source_order(frames):
    frame = frames[("rte", "train")]
    first = subset_rows(frame, 300, seed=7)
    again = subset_rows(frame, 300, seed=7)
    other = subset_rows(frame, 300, seed=8)
    assert first.equals(again)
    assert not first["idx"].equals(other["idx"])
    assert len(first) == 300 and first["idx"].is_monotonic_increasing
    assert subset_rows(frame, None, seed=7) is frame
    assert len(subset_rows(frame, 10_000, seed=7)) == len(frame)
    with pytest.raises(ValueError, match="max_examples"):
        subset_rows(frame, 0, seed=7)


def test_prepare_glue_writes_contract_schema(tmp_path, frames):
    outputs = {split: tmp_path / f"{split}.parquet" for split in ("train", "validation")}
    prepare_glue("sst2", outputs, "bundled", BUNDLED, None, None, 500, None, 1234)
    schema = pq.read_schema(outputs["train"])
    assert [(f.name, str(f.type)) for f in schema] == [
        ("idx", "int64"), ("text_a", "string"), ("text_b", "string"), ("label", "int64")
    ]
    train = read_normalised(outputs["train"])
    validation = read_normalised(outputs["validation"])
    assert len(train) == 500 and len(validation) == 872
    full = frames[("sst2", "train")].set_index("idx")
    assert (full.loc[train["idx"], "text_a"].tolist()) == train["text_a"].tolist()
    assert train["text_b"].isna().all()
    with pytest.raises(ValueError, match="outputs must be named train, validation"):
        prepare_glue("sst2", {"train": outputs["train"]}, "bundled", BUNDLED, None, None, None, None, 0)
