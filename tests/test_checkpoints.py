"""Resumable checkpoints over a run's life: a checkpoint of another setup is set aside (the run starts
over by itself, with a warning), a resumed run says so in its log, and finishing leaves no empty folders."""

from __future__ import annotations

import json

import pytest

from kernels.training import FinetuneHyperparams, finetune
from kernels.training.checkpoint import remove_checkpoint
from test_training_support import finetune_hp, make_tokenizer, sentiment_frame, tiny_llama


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def small_hp(**overrides) -> FinetuneHyperparams:
    return finetune_hp(**{"max_length": 32, "checkpoint_every": 2, "log_every": 1, **overrides})


def test_checkpoint_of_another_setup_is_set_aside_and_training_starts_over(tokenizer, tmp_path, capsys):
    frame = sentiment_frame(64)
    ckpt = tmp_path / "ckpt"
    finetune(tiny_llama(tokenizer), tokenizer, frame, small_hp(), model_dir=tmp_path / "m", checkpoint_dir=ckpt,
             stop_after_steps=2, progress=False)
    old = json.loads((ckpt / "latest.json").read_text())["fingerprint"]
    capsys.readouterr()
    result = finetune(tiny_llama(tokenizer), tokenizer, frame, small_hp(lr=1e-2), model_dir=tmp_path / "m",
                      checkpoint_dir=ckpt, progress=False)
    assert result.completed and result.log["step"].tolist()[0] == 1  # from step 0, not resumed at 2
    stale = tmp_path / f"ckpt.stale-{old}"
    assert json.loads((stale / "latest.json").read_text())["step"] == 2  # nothing deleted
    err = capsys.readouterr().err
    assert f"moved it to {stale}" in err and "training starts from step 0" in err


def test_resumed_run_says_from_which_step(tokenizer, tmp_path, capsys):
    frame = sentiment_frame(64)
    args = dict(model_dir=tmp_path / "m", checkpoint_dir=tmp_path / "ckpt", progress=False)
    finetune(tiny_llama(tokenizer), tokenizer, frame, small_hp(), stop_after_steps=4, **args)
    capsys.readouterr()
    finetune(tiny_llama(tokenizer), tokenizer, frame, small_hp(), **args)
    assert "resumed from step 4" in capsys.readouterr().err


def test_finished_run_leaves_no_empty_checkpoint_folders(tmp_path):
    results = tmp_path / "results"
    run = results / "checkpoints" / "gla" / "rte" / "seed0"
    other = results / "checkpoints" / "gla" / "sst2" / "seed0"
    (run / "step-00000002").mkdir(parents=True)
    other.mkdir(parents=True)
    remove_checkpoint(run, prune_parents=3)
    assert not (results / "checkpoints" / "gla" / "rte").exists()
    assert other.is_dir()  # a sibling run's folder stays, and so do its parents
    remove_checkpoint(other, prune_parents=3)
    assert results.is_dir() and not (results / "checkpoints").exists()


def test_checkpoints_are_due_by_steps_or_minutes():
    import time

    from kernels.training.loop import checkpoint_due

    now = time.perf_counter()
    by_steps = small_hp(checkpoint_every=200)
    assert checkpoint_due(by_steps, 400, now) and not checkpoint_due(by_steps, 156, now - 3600)
    by_time = small_hp(checkpoint_every=200, checkpoint_every_minutes=30)
    assert checkpoint_due(by_time, 156, now - 31 * 60)  # RTE: 156 steps, never a multiple of 200
    assert not checkpoint_due(by_time, 156, now - 29 * 60)
    with pytest.raises(ValueError, match="checkpoint_every_minutes"):
        FinetuneHyperparams.from_dict({"checkpoint_every_minutes": 0})
