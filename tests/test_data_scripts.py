"""The data-stage workflow scripts, run both ways: with a `snakemake` object built from Snakemake's
own containers (as the `script:` directive provides) and from the command line."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, Wildcards

from kernels.data import ADVGLUE_SETS, read_bundled_glue, read_normalised
from kernels.tokenization import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "resources" / "data"
SCRIPTS = ROOT / "workflow_scripts"


def _run_as_snakemake(script: str, **parts) -> None:
    parts.setdefault("log", Log())
    runpy.run_path(str(SCRIPTS / script), init_globals={"snakemake": SimpleNamespace(**parts)}, run_name="__snakemake__")


def _named_inputs(**groups: list[str]) -> InputFiles:
    """Inputs as Snakemake builds them for `input: train=[...], code=[...]`: one flat list with
    named slices (the same calls Snakemake's rule setup makes)."""
    inputs = InputFiles(toclone=[path for paths in groups.values() for path in paths])
    start = 0
    for name, paths in groups.items():
        inputs._set_name(name, start, start + len(paths))
        start += len(paths)
    return inputs


def _glue_params(**overrides) -> Params:
    values = dict(
        source="bundled", bundled_dir=str(BUNDLED), hub_dataset="nyu-mll/glue", revision=None,
        max_train_examples=400, max_eval_examples=None, subset_seed=1234,
    )
    values.update(overrides)
    return Params(fromdict=values)


def test_prepare_glue_and_tokenizer_via_snakemake_object(tmp_path):
    train_paths = []
    for task in ("sst2", "rte"):
        out = {split: str(tmp_path / "data" / task / f"{split}.parquet") for split in ("train", "validation")}
        _run_as_snakemake(
            "prepare_glue.py",
            log=Log(toclone=[str(tmp_path / "logs" / f"{task}.log")]),
            wildcards=Wildcards(fromdict={"task": task}),
            output=OutputFiles(fromdict=out),
            params=_glue_params(),
            input=InputFiles(),
        )
        train = read_normalised(out["train"])
        assert len(train) == 400
        assert f"train.parquet: 400 rows" in (tmp_path / "logs" / f"{task}.log").read_text()
        assert len(read_normalised(out["validation"])) == len(read_bundled_glue(BUNDLED, task, "validation"))
        train_paths.append(out["train"])

    tok_dir = tmp_path / "tokenizer"
    log = tmp_path / "logs" / "train_tokenizer.log"
    _run_as_snakemake(
        "train_tokenizer.py",
        input=_named_inputs(train=train_paths, code=[str(ROOT / "kernels" / "tokenization.py")]),
        log=Log(toclone=[str(log)]),
        output=OutputFiles(
            fromdict={"tokenizer_json": str(tok_dir / "tokenizer.json"), "tokenizer_config": str(tok_dir / "tokenizer_config.json")}
        ),
        params=Params(fromdict={"vocab_size": 600, "min_frequency": 2}),
        wildcards=Wildcards(),
    )
    tokenizer = load_tokenizer(tok_dir)
    assert len(tokenizer) == 600
    assert "trained on 2 file(s): vocabulary 600" in log.read_text()
    ids = tokenizer("A man sleeps.", "Nobody sleeps.")["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id and tokenizer.unk_token_id not in ids


def test_prepare_glue_script_rejects_unbundled_task(tmp_path):
    out = {split: str(tmp_path / f"{split}.parquet") for split in ("train", "validation")}
    with pytest.raises(FileNotFoundError, match="qqp train is not bundled"):
        _run_as_snakemake(
            "prepare_glue.py", wildcards=Wildcards(fromdict={"task": "qqp"}), output=OutputFiles(fromdict=out),
            params=_glue_params(), input=InputFiles(),
        )


def test_prepare_advglue_via_snakemake_object(tmp_path):
    outputs = [str(tmp_path / "advglue" / f"{name}.parquet") for name in ADVGLUE_SETS]
    params = Params(
        fromdict=dict(source="bundled", bundled_dir=str(BUNDLED), hub_dataset="AI-Secure/adv_glue",
                      annotations_url="https://adversarialglue.github.io/dataset/dev_ann.json", revision=None)
    )
    _run_as_snakemake("prepare_advglue.py", output=OutputFiles(toclone=outputs), params=params, input=InputFiles(), wildcards=Wildcards())
    assert [len(read_normalised(path)) for path in outputs] == [148, 78, 121, 162, 148, 81]


def test_scripts_from_the_command_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}
    glue = subprocess.run(
        [sys.executable, str(SCRIPTS / "prepare_glue.py"), "--task", "rte", "--out-dir", str(tmp_path / "rte"),
         "--bundled-dir", str(BUNDLED), "--max-train-examples", "200", "--max-eval-examples", "none"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert glue.returncode == 0, glue.stderr
    assert len(read_normalised(tmp_path / "rte" / "train.parquet")) == 200
    assert len(read_normalised(tmp_path / "rte" / "validation.parquet")) == 277
    tok = subprocess.run(
        [sys.executable, str(SCRIPTS / "train_tokenizer.py"), str(tmp_path / "rte" / "train.parquet"),
         "--out-dir", str(tmp_path / "tok"), "--vocab-size", "400"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert tok.returncode == 0, tok.stderr
    assert (tmp_path / "tok" / "tokenizer.json").is_file() and (tmp_path / "tok" / "tokenizer_config.json").is_file()
