"""Bundled AdvGLUE dev joined with the authors' annotations; counts from resources/data/README.md
(and /work/shared/data/README.md, where they were verified against the source)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kernels.data import ADVGLUE_SETS, DataValidationError, prepare_advglue, read_bundled_advglue, read_bundled_glue, read_normalised
from kernels.data.bundled import write_checksums

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "data"

LEVEL_COUNTS = {  # set: (n, word, sentence, human)
    "sst2": (148, 80, 51, 17),
    "qqp": (78, 66, 5, 7),
    "mnli": (121, 85, 36, 0),
    "mnli-mm": (162, 71, 48, 43),
    "qnli": (148, 91, 42, 15),
    "rte": (81, 62, 19, 0),
}
METHOD_COLUMNS = [
    ("word", "TextBugger"), ("word", "TextFooler"), ("word", "BERT-ATTACK"), ("word", "SememePSO"),
    ("word", "SemAttack"), ("sentence", "T3"), ("sentence", "SCPN"), ("sentence", "AdvFever"),
    ("sentence", "StressTest"), ("sentence", "CheckList"), ("human", "ANLI"), ("human", "StressTest"),
    ("human", "CheckList"), ("human", "AdvSQuAD"),
]
METHOD_COUNTS = {
    "sst2": [19, 16, 8, 28, 9, 17, 4, 0, 19, 11, 0, 0, 17, 0],
    "qqp": [24, 8, 6, 9, 19, 5, 0, 0, 0, 0, 0, 0, 7, 0],
    "mnli": [38, 8, 13, 11, 15, 10, 10, 0, 8, 8, 0, 0, 0, 0],
    "mnli-mm": [38, 7, 11, 9, 6, 10, 9, 1, 9, 19, 22, 21, 0, 0],
    "qnli": [35, 11, 8, 19, 18, 15, 4, 0, 11, 12, 0, 0, 7, 8],
    "rte": [24, 12, 7, 12, 7, 7, 1, 1, 7, 3, 0, 0, 0, 0],
}
LABEL_COUNTS = {
    "sst2": [72, 76], "qqp": [46, 32], "mnli": [32, 39, 50], "mnli-mm": [60, 45, 57], "qnli": [74, 74], "rte": [35, 46],
}
PERTURBED_FIELD_COUNTS = {  # set: (original_text_a present, original_text_b present)
    "sst2": (131, 0), "qqp": (42, 29), "mnli": (47, 74), "mnli-mm": (49, 70), "qnli": (76, 57), "rte": (45, 36),
}


@pytest.fixture(scope="module")
def adv():
    return read_bundled_advglue(BUNDLED)


def test_sets_in_official_order_with_dev_json_order(adv):
    assert tuple(adv) == ADVGLUE_SETS
    dev = json.loads((BUNDLED / "advglue" / "dev.json").read_text(encoding="utf-8"))
    for name, frame in adv.items():
        assert frame["idx"].tolist() == [item["idx"] for item in dev[name]]
        assert frame["label"].tolist() == [item["label"] for item in dev[name]]


@pytest.mark.parametrize("name", ADVGLUE_SETS)
def test_counts_per_level_method_and_label(adv, name):
    frame = adv[name]
    n, word, sentence, human = LEVEL_COUNTS[name]
    assert len(frame) == n
    levels = frame["level"].value_counts()
    assert [levels.get(level, 0) for level in ("word", "sentence", "human")] == [word, sentence, human]
    pairs = frame.groupby(["level", "method"]).size()
    assert [int(pairs.get(key, 0)) for key in METHOD_COLUMNS] == METHOD_COUNTS[name]
    assert pairs.sum() == n  # no (level, method) outside the README table
    assert frame["label"].value_counts().sort_index().tolist() == LABEL_COUNTS[name]


@pytest.mark.parametrize("name", ADVGLUE_SETS)
def test_original_text_of_the_perturbed_field(adv, name):
    frame = adv[name]
    has_a = frame["original_text_a"].notna()
    has_b = frame["original_text_b"].notna()
    assert (int(has_a.sum()), int(has_b.sum())) == PERTURBED_FIELD_COUNTS[name]
    human = frame["level"] == "human"
    assert not (has_a | has_b)[human].any()
    assert ((has_a ^ has_b) == ~human).all()  # exactly one perturbed field per attacked item
    # The perturbed text differs from its original (word attacks) or at least is a real text.
    word = frame["level"] == "word"
    perturbed = frame["text_a"].where(has_a, frame["text_b"])
    original = frame["original_text_a"].where(has_a, frame["original_text_b"])
    assert (perturbed[word] != original[word]).all()


def test_known_items(adv):
    sst2 = adv["sst2"].iloc[0]
    assert sst2["level"] == "word" and sst2["method"] == "SememePSO" and sst2["label"] == 1
    assert sst2["original_text_a"].startswith("it 's an offbeat treat that pokes fun")
    assert sst2["text_b"] is None and sst2["original_text_b"] is None
    rte = adv["rte"].iloc[80]
    assert rte["level"] == "sentence" and rte["method"] == "CheckList"
    assert rte["text_b"].startswith("@fnDK5J ")
    assert rte["original_text_b"] == "Procter and Gamble spends $1.8 billion for Research and Development."
    assert rte["original_text_a"] is None


def test_sst2_originals_found_in_glue_dev(adv):
    # The README: 122 of 131 perturbed SST-2 originals occur verbatim in GLUE dev, same label.
    glue = read_bundled_glue(BUNDLED, "sst2", "validation")
    label_of = {text.strip(): label for text, label in zip(glue["text_a"], glue["label"])}
    attacked = adv["sst2"][adv["sst2"]["original_text_a"].notna()]
    found = [(o.strip(), label) for o, label in zip(attacked["original_text_a"], attacked["label"]) if o.strip() in label_of]
    assert len(found) == 122
    assert all(label_of[text] == label for text, label in found)


def test_prepare_advglue_writes_six_files(tmp_path, adv):
    outputs = [tmp_path / f"{name}.parquet" for name in ADVGLUE_SETS]
    prepare_advglue(outputs, "bundled", BUNDLED, None, None, None)
    schema = pq.read_schema(outputs[0])
    assert [(f.name, str(f.type)) for f in schema] == [
        ("idx", "int64"), ("text_a", "string"), ("text_b", "string"), ("label", "int64"), ("level", "string"),
        ("method", "string"), ("original_text_a", "string"), ("original_text_b", "string"),
    ]
    for name, path in zip(ADVGLUE_SETS, outputs):
        assert read_normalised(path).equals(adv[name].reset_index(drop=True))
    with pytest.raises(ValueError, match="must be named mnli.parquet"):
        prepare_advglue(outputs[:2] + outputs[3:] + outputs[2:3], "bundled", BUNDLED, None, None, None)


def test_annotation_disagreeing_with_dev_json_is_an_error(tmp_path):
    (tmp_path / "advglue").mkdir()
    dev = json.loads((BUNDLED / "advglue" / "dev.json").read_text(encoding="utf-8"))
    ann = json.loads((BUNDLED / "advglue" / "dev_ann.json").read_text(encoding="utf-8"))
    ann["qnli"][3]["sentence"] += " changed"
    (tmp_path / "advglue" / "dev.json").write_text(json.dumps(dev), encoding="utf-8")
    (tmp_path / "advglue" / "dev_ann.json").write_text(json.dumps(ann), encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"set 'qnli' idx 3: field 'sentence' disagrees"):
        read_bundled_advglue(write_checksums(tmp_path))

    ann["qnli"][3]["sentence"] = dev["qnli"][3]["sentence"]
    ann["rte"][5]["data_construction"] = "paragraph"
    (tmp_path / "advglue" / "dev_ann.json").write_text(json.dumps(ann), encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"set 'rte' idx 5: field 'data_construction' is 'paragraph'"):
        read_bundled_advglue(write_checksums(tmp_path))
