"""The hub path really runs ``datasets.load_dataset``, on local directories laid out like the hub
repositories (nyu-mll/glue, AI-Secure/adv_glue): parquet files per config plus a README whose
YAML header declares the configs, as the real repositories have."""

from __future__ import annotations

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil
from pathlib import Path

import datasets
import pytest

from kernels.data import (
    ADVGLUE_SETS,
    DataValidationError,
    TASKS,
    fetch_annotations,
    prepare_advglue,
    prepare_glue,
    read_bundled_advglue,
    read_bundled_glue,
    read_hub_advglue,
    read_hub_glue,
    read_normalised,
)
from kernels.rehearsal.hub import hf_features, write_advglue_repo, write_hf_split, write_readme

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "data"


@pytest.fixture(autouse=True)
def isolated_datasets_cache(tmp_path, monkeypatch):
    # load_dataset writes Arrow caches; keep them out of the user's ~/.cache.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture()
def glue_hub_dir(tmp_path) -> Path:
    """RTE: HF's own parquet files (bundled copies). SST-2 validation: written in HF's schema."""
    root = tmp_path / "glue_hub"
    (root / "rte").mkdir(parents=True)
    for path in (BUNDLED / "glue" / "rte" / "hf_parquet").glob("*.parquet"):
        shutil.copy(path, root / "rte" / path.name)
    sst2 = read_bundled_glue(BUNDLED, "sst2", "validation")
    rows = {"sentence": sst2["text_a"].tolist(), "label": sst2["label"].tolist(), "idx": sst2["idx"].tolist()}
    write_hf_split(root, "sst2", "validation", rows, hf_features(["sentence"], TASKS["sst2"].label_names))
    write_readme(root, {"rte": ["train", "validation"], "sst2": ["validation"]})
    return root


def test_hub_glue_equals_bundled_reader(glue_hub_dir):
    hub = read_hub_glue(str(glue_hub_dir), "rte", "validation", revision=None)
    assert hub.equals(read_bundled_glue(BUNDLED, "rte", "validation"))
    hub = read_hub_glue(str(glue_hub_dir), "sst2", "validation")
    assert hub.equals(read_bundled_glue(BUNDLED, "sst2", "validation"))


def test_hub_rte_train_matches_tsv_except_known_leading_space(glue_hub_dir):
    hub = read_hub_glue(str(glue_hub_dir), "rte", "train")
    tsv = read_bundled_glue(BUNDLED, "rte", "train")
    assert hub[["idx", "text_b", "label"]].equals(tsv[["idx", "text_b", "label"]])
    differs = (hub["text_a"] != tsv["text_a"]).to_numpy().nonzero()[0].tolist()
    # The data README: train row 2164 starts with a space in the 2018 TSV, not in HF's parquet.
    assert differs == [2164]
    assert tsv["text_a"].iloc[2164] == " " + hub["text_a"].iloc[2164]


def test_prepare_glue_from_hub_source(glue_hub_dir, tmp_path):
    outputs = {split: tmp_path / "out" / f"{split}.parquet" for split in ("train", "validation")}
    prepare_glue("rte", outputs, "hub", None, str(glue_hub_dir), None, 100, 50, 3)
    train, validation = read_normalised(outputs["train"]), read_normalised(outputs["validation"])
    assert len(train) == 100 and len(validation) == 50
    assert train["idx"].is_monotonic_increasing and validation["idx"].is_monotonic_increasing


def test_hub_label_names_must_match_task(tmp_path):
    root = tmp_path / "bad_hub"
    rows = {"sentence": ["good film "], "label": [1], "idx": [0]}
    write_hf_split(root, "sst2", "validation", rows, hf_features(["sentence"], ["positive", "negative"]))
    write_readme(root, {"sst2": ["validation"]})
    with pytest.raises(DataValidationError, match=r"sst2/validation.*'label' has names \['positive', 'negative'\]"):
        read_hub_glue(str(root), "sst2", "validation")


@pytest.fixture()
def advglue_hub_dir(tmp_path) -> Path:
    """AdvGLUE in the layout of AI-Secure/adv_glue, written from the official dev.json."""
    return write_advglue_repo(tmp_path / "adv_hub", BUNDLED)


def test_hub_advglue_equals_bundled_reader(advglue_hub_dir, tmp_path):
    url = (BUNDLED / "advglue" / "dev_ann.json").as_uri()
    hub = read_hub_advglue(str(advglue_hub_dir), url, revision=None, cache_dir=tmp_path / "cache")
    bundled = read_bundled_advglue(BUNDLED)
    assert tuple(hub) == ADVGLUE_SETS
    for name in ADVGLUE_SETS:
        assert hub[name].equals(bundled[name]), name
    outputs = [tmp_path / "out" / f"{name}.parquet" for name in ADVGLUE_SETS]
    prepare_advglue(outputs, "hub", None, str(advglue_hub_dir), url, None, cache_dir=tmp_path / "cache")
    assert read_normalised(outputs[3]).equals(bundled["mnli-mm"])


def test_annotations_are_cached(tmp_path):
    source = tmp_path / "dev_ann.json"
    shutil.copy(BUNDLED / "advglue" / "dev_ann.json", source)
    cached = fetch_annotations(source.as_uri(), tmp_path / "cache")
    assert cached.read_bytes() == source.read_bytes()
    source.unlink()  # a second call must not need the source any more
    assert fetch_annotations(source.as_uri(), tmp_path / "cache") == cached


def test_annotation_download_failure_and_bad_payload(tmp_path):
    with pytest.raises(RuntimeError, match="could not download the AdvGLUE annotations"):
        fetch_annotations((tmp_path / "absent.json").as_uri(), tmp_path / "cache")
    bad = tmp_path / "bad.json"
    bad.write_text('{"sst2": []}', encoding="utf-8")
    with pytest.raises(DataValidationError, match="missing AdvGLUE set"):
        fetch_annotations(bad.as_uri(), tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())  # nothing half-cached


def test_hub_annotation_join_mismatch_names_set_idx_field(advglue_hub_dir, tmp_path):
    ann = json.loads((BUNDLED / "advglue" / "dev_ann.json").read_text(encoding="utf-8"))
    ann["mnli-mm"][7]["label"] = (ann["mnli-mm"][7]["label"] + 1) % 3
    path = tmp_path / "dev_ann_bad.json"
    path.write_text(json.dumps(ann), encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"set 'mnli-mm' idx 7: field 'label' disagrees between .*adv_mnli_mismatched"):
        read_hub_advglue(str(advglue_hub_dir), path.as_uri(), cache_dir=tmp_path / "cache")
