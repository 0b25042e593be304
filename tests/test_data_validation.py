"""Bad input gives a clear error naming the file and the column, row or field."""

from __future__ import annotations

import json
import re
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import datasets
import pytest

from kernels.data.bundled import write_checksums
from kernels.data import (
    DataValidationError,
    TASKS,
    read_bundled_advglue,
    read_bundled_glue,
    read_glue_tsv,
    read_hub_glue,
    validate_glue_rows,
)
from kernels.data.schema import glue_frame

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "data"
RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"


def _tsv(tmp_path: Path, body: str | bytes, name: str = "train.tsv") -> Path:
    path = tmp_path / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    return path


def test_missing_column(tmp_path):
    path = _tsv(tmp_path, "index\tsentence1\tlabel\n0\tA man.\tentailment\n")
    with pytest.raises(DataValidationError, match=rf"{re.escape(str(path))}: missing column 'sentence2'"):
        read_glue_tsv(path, "rte")


def test_label_out_of_range(tmp_path):
    path = _tsv(tmp_path, RTE_HEADER + "0\tA.\tB.\tentailment\n1\tC.\tD.\tneutral\n")
    with pytest.raises(DataValidationError, match=rf"{re.escape(str(path))}: line 3: column 'label' has label 'neutral', out of range"):
        read_glue_tsv(path, "rte")
    frame = glue_frame([0, 1], ["a", "b"], [None, None], [1, 2])
    with pytest.raises(DataValidationError, match=r"x.parquet: row 1 \(idx 1\): label 2 out of range for 'sst2'"):
        validate_glue_rows(frame, TASKS["sst2"], "x.parquet")


def test_empty_file_and_header_only(tmp_path):
    empty = _tsv(tmp_path, b"", "empty.tsv")
    with pytest.raises(DataValidationError, match=rf"{re.escape(str(empty))}: empty file"):
        read_glue_tsv(empty, "sst2")
    header_only = _tsv(tmp_path, "sentence\tlabel\n", "header.tsv")
    with pytest.raises(DataValidationError, match=rf"{re.escape(str(header_only))}: no data rows"):
        read_glue_tsv(header_only, "sst2")
    (tmp_path / "advglue").mkdir()
    (tmp_path / "advglue" / "dev.json").write_bytes(b"")
    (tmp_path / "advglue" / "dev_ann.json").write_bytes(b"{}")
    with pytest.raises(DataValidationError, match=r"dev.json: empty file"):
        read_bundled_advglue(write_checksums(tmp_path))


def test_non_utf8_bytes(tmp_path):
    path = _tsv(tmp_path, b"sentence\tlabel\ngood film \t1\nbad \xe9 film \t0\n")
    with pytest.raises(DataValidationError, match=rf"{re.escape(str(path))}: not valid UTF-8 at byte \d+ \(line 3\)"):
        read_glue_tsv(path, "sst2")


def test_duplicate_idx(tmp_path):
    path = _tsv(tmp_path, RTE_HEADER + "0\tA.\tB.\tentailment\n0\tC.\tD.\tnot_entailment\n")
    with pytest.raises(DataValidationError, match=rf"{re.escape(str(path))}: row 1: duplicate idx 0"):
        read_glue_tsv(path, "rte")


def test_ragged_row_and_non_integer_index(tmp_path):
    path = _tsv(tmp_path, RTE_HEADER + "0\tA.\tB.\tentailment\n1\tC.\tnot_entailment\n")
    with pytest.raises(DataValidationError, match=rf"{re.escape(str(path))}: line 3 has 3 tab-separated fields, header has 4"):
        read_glue_tsv(path, "rte")
    path = _tsv(tmp_path, RTE_HEADER + "zero\tA.\tB.\tentailment\n", "idx.tsv")
    with pytest.raises(DataValidationError, match=rf"{re.escape(str(path))}: line 2: column 'index' is not an integer"):
        read_glue_tsv(path, "rte")


def test_null_text_a_from_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    root = tmp_path / "hub"
    (root / "sst2").mkdir(parents=True)
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"]),
         "idx": datasets.Value("int32")}
    )
    rows = {"sentence": ["fine ", None], "label": [1, 0], "idx": [0, 1]}
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(root / "sst2" / "validation-00000-of-00001.parquet"))
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: sst2\n  data_files:\n  - split: validation\n    path: sst2/validation-*\n---\n",
        encoding="utf-8",
    )
    with pytest.raises(DataValidationError, match=r"sst2/validation\]: row 1 \(idx 1\): text_a \('sentence'\) is null"):
        read_hub_glue(str(root), "sst2", "validation")


def test_null_text_and_missing_field_in_advglue_json(tmp_path):
    (tmp_path / "advglue").mkdir()
    dev = json.loads((BUNDLED / "advglue" / "dev.json").read_text(encoding="utf-8"))
    ann = json.loads((BUNDLED / "advglue" / "dev_ann.json").read_text(encoding="utf-8"))
    dev["sst2"][2]["sentence"] = None
    ann["sst2"][2]["sentence"] = None
    (tmp_path / "advglue" / "dev.json").write_text(json.dumps(dev), encoding="utf-8")
    (tmp_path / "advglue" / "dev_ann.json").write_text(json.dumps(ann), encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"dev.json \[sst2\]: row 2 \(idx 2\): text_a \('sentence'\) is null"):
        read_bundled_advglue(write_checksums(tmp_path))
    dev["sst2"][2]["sentence"] = ann["sst2"][2]["sentence"] = "restored"
    del ann["qqp"][4]["method"]
    (tmp_path / "advglue" / "dev.json").write_text(json.dumps(dev), encoding="utf-8")
    (tmp_path / "advglue" / "dev_ann.json").write_text(json.dumps(ann), encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"dev_ann.json: set 'qqp' item 4: missing field 'method'"):
        read_bundled_advglue(write_checksums(tmp_path))


def test_unknown_task_and_split():
    with pytest.raises(ValueError, match="unknown GLUE task 'cola'"):
        read_bundled_glue(BUNDLED, "cola", "train")
    with pytest.raises(ValueError, match="has no split 'test'"):
        read_bundled_glue(BUNDLED, "rte", "test")
