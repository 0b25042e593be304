"""Progress and state files never block a job for good: each one is written atomically, and one that a kill,
a full disk or a crash left damaged is set aside with a warning naming it, and that part starts over (the
attack's progress settings, training checkpoints, the AdvGLUE annotation cache). Staging files of a killed
write are removed when the job runs again, and written weights have the permissions of the umask."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest
import torch

from test_training_support import finetune_hp, make_tokenizer, sentiment_frame, tiny_llama

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------- attack progress

class _Outcome:
    """What kernels.attacks.runner.outcome_line reads of an attack's result (a skipped example)."""

    def __init__(self, text_a, text_b, label):
        from types import SimpleNamespace

        self.status = "skipped"
        text = SimpleNamespace(text_a=text_a, text_b=text_b, words_changed=0, num_words=len(text_a.split()))
        self.final = self.original = SimpleNamespace(text=text, pred=1 - label)
        self.queries, self.cache_hits, self.first_success_query = 1, 0, None


class CountingAttack:
    """The runner's view of an attack (name and ``attack``), counting the examples it is asked to attack."""

    name = "counting"

    def __init__(self):
        self.calls = 0

    def attack(self, text_a, text_b, label, rng):
        self.calls += 1
        return _Outcome(text_a, text_b, label)


def examples(n=5) -> pd.DataFrame:
    return pd.DataFrame({"idx": list(range(10, 10 + n)), "text_a": [f"text number {i}" for i in range(n)],
                         "text_b": [None] * n, "label": [0, 1] * (n // 2) + [0] * (n % 2)})


@pytest.mark.parametrize("damage", [b"", b'{"finger', b"\x00\x00\x00\x00", b"[1, 2]", b'{"other": 1}'],
                         ids=["empty", "cut", "zeros", "not-an-object", "no-fingerprint"])
def test_a_damaged_attack_progress_file_is_set_aside_and_the_attack_starts_over(tmp_path, capsys, damage):
    from kernels.attacks.runner import run_attack

    part = tmp_path / "deepwordbug.jsonl.part"
    run_attack(CountingAttack(), examples(), attack_seed=1, model_seed=0, progress_path=part, stamp="s1")
    meta = tmp_path / "deepwordbug.jsonl.part.meta.json"
    assert json.loads(meta.read_text()) == {"fingerprint": "s1"}
    meta.write_bytes(damage)  # what a kill or a full disk leaves of it
    capsys.readouterr()
    attack = CountingAttack()
    lines = run_attack(attack, examples(), attack_seed=1, model_seed=0, progress_path=part, stamp="s1")
    assert len(lines) == 5 and attack.calls == 5  # started over, and finished
    err = capsys.readouterr().err
    assert f"warning: {meta} is damaged" in err and "starts over" in err
    aside = sorted(tmp_path.glob("deepwordbug.jsonl.part.meta.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damage  # nothing the user may want is deleted
    assert json.loads(meta.read_text()) == {"fingerprint": "s1"}  # written again, whole


def test_a_progress_file_cut_in_a_line_or_garbled_resumes_from_its_last_good_line(tmp_path, capsys):
    from kernels.attacks.runner import run_attack

    part = tmp_path / "p.jsonl.part"
    run_attack(CountingAttack(), examples(), attack_seed=1, model_seed=0, progress_path=part, stamp="s")
    good = part.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(good[:2]) + b"\xff\xfe not utf-8\n" + good[3])
    attack = CountingAttack()
    lines = run_attack(attack, examples(), attack_seed=1, model_seed=0, progress_path=part, stamp="s")
    assert attack.calls == 3 and [line["idx"] for line in lines] == [10, 11, 12, 13, 14]
    assert "resuming counting after 2 of 5 examples" in capsys.readouterr().err  # stderr: the rule log


def test_the_progress_settings_file_is_written_atomically(tmp_path, monkeypatch):
    """A write that fails half-way (a full disk) leaves no half-written settings file behind."""
    from kernels.attacks import runner

    part = tmp_path / "p.jsonl.part"
    runner.run_attack(CountingAttack(), examples(), attack_seed=1, model_seed=0, progress_path=part, stamp="old")
    meta = tmp_path / "p.jsonl.part.meta.json"

    def full_disk(self, text, *args, **kwargs):  # opened (so emptied), half written, then the disk is full
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(text[: len(text) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        runner.run_attack(CountingAttack(), examples(), attack_seed=1, model_seed=0, progress_path=part, stamp="new")
    monkeypatch.undo()
    assert json.loads(meta.read_text()) == {"fingerprint": "old"}  # the old one, whole
    assert not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------------------------- training checkpoints

@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def _interrupted_run(tokenizer, tmp_path):
    from kernels.training import finetune

    ckpt = tmp_path / "ckpt"
    hp = finetune_hp(max_length=32, checkpoint_every=2, log_every=1)
    finetune(tiny_llama(tokenizer), tokenizer, sentiment_frame(64), hp, model_dir=tmp_path / "m",
             checkpoint_dir=ckpt, stop_after_steps=2, progress=False)
    step = json.loads((ckpt / "latest.json").read_text())["dir"]
    return ckpt, ckpt / step, hp


@pytest.mark.parametrize("damaged", ["latest.json", "model.safetensors", "state.pt"])
def test_a_damaged_checkpoint_is_set_aside_and_training_starts_over(tokenizer, tmp_path, capsys, damaged):
    from kernels.training import finetune

    ckpt, step_dir, hp = _interrupted_run(tokenizer, tmp_path)
    target = ckpt / damaged if damaged == "latest.json" else step_dir / damaged
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])  # cut by a kill or a full disk
    capsys.readouterr()
    result = finetune(tiny_llama(tokenizer), tokenizer, sentiment_frame(64), hp, model_dir=tmp_path / "m",
                      checkpoint_dir=ckpt, progress=False)
    assert result.completed and result.log["step"].tolist()[0] == 1  # from step 0
    err = capsys.readouterr().err
    assert f"warning: {ckpt} is damaged" in err and damaged in err and "starts over" in err
    assert "weights_only=False" not in err
    assert len(list(tmp_path.glob("ckpt.damaged-*"))) == 1


def test_a_damaged_checkpoint_leaves_the_model_untouched(tokenizer, tmp_path):
    """The state file is read before any weight is loaded: the run that starts over starts from the
    model's own initial weights, not from a half-restored checkpoint."""
    from kernels.training.checkpoint import load_checkpoint

    ckpt, step_dir, hp = _interrupted_run(tokenizer, tmp_path)
    fingerprint = json.loads((ckpt / "latest.json").read_text())["fingerprint"]
    (step_dir / "state.pt").write_bytes(b"PK\x03\x04 truncated")
    model = tiny_llama(tokenizer)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    assert load_checkpoint(ckpt, model, optimizer, scheduler, fingerprint) is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------------- annotation cache

def test_a_damaged_annotation_cache_is_set_aside_and_fetched_again(tmp_path, capsys):
    from kernels.data import fetch_annotations

    from workflow_helpers import REPO

    source = REPO / "resources" / "data" / "advglue" / "dev_ann.json"
    cached = fetch_annotations(source.as_uri(), tmp_path / "cache")
    cached.write_bytes(cached.read_bytes()[:100])  # a download cut short, or a disk that filled up
    again = fetch_annotations(source.as_uri(), tmp_path / "cache")
    assert again == cached and again.read_bytes() == source.read_bytes()
    assert f"warning: {cached} is damaged" in capsys.readouterr().err
    assert len(list((tmp_path / "cache").glob("*.damaged-*"))) == 1


# ---------------------------------------------------------------------------------- staging and modes

def test_staging_files_of_a_killed_write_go_when_the_job_runs_again(tmp_path):
    from kernels.io import log_to, remove_stale_staging

    out = tmp_path / "results" / "eval" / "gla" / "rte" / "seed0"
    out.mkdir(parents=True)
    stale_file = out / ".metrics.json.k3x9a.tmp"  # kernels.io.atomic_path's name, left by a SIGKILL
    stale_file.write_text("half")
    model_dir = tmp_path / "results" / "models" / "gla" / "rte" / "seed0"
    stale_dir = model_dir.parent / ".seed0.q1w2e3.tmp"  # write_model_dir's staging folder
    (stale_dir / "sub").mkdir(parents=True)
    (stale_dir / "model.safetensors").write_bytes(b"x" * 100)
    keep = out / ".metrics.json.notes"  # not a staging name
    keep.write_text("mine")
    log = tmp_path / "job.log"
    with log_to(log, outputs=[out / "metrics.json", model_dir / "config.json"]):  # what each job script does
        pass
    assert not stale_file.exists() and not stale_dir.exists() and keep.exists()
    text = log.read_text()
    assert str(stale_file) in text and str(stale_dir) in text
    assert remove_stale_staging([out / "metrics.json"]) == []  # nothing left the second time


def test_every_job_script_clears_the_staging_files_of_its_outputs():
    from workflow_helpers import REPO

    scripts = [p for p in (REPO / "workflow_scripts").glob("*.py") if "with log_to(" in p.read_text()]
    assert len(scripts) >= 10
    for script in scripts:
        assert "outputs=" in script.read_text().split("with log_to(", 1)[1].split("\n", 1)[0], script.name


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_weights_and_tokenizer_files_honour_the_umask(tokenizer, tmp_path, umask):
    from kernels.training.loop import write_model_dir

    previous = os.umask(umask)
    try:
        log = pd.DataFrame({"step": [1], "loss": [0.5], "lr": [1e-3], "tokens_per_s": [1.0], "elapsed_s": [1.0]})
        write_model_dir(tmp_path / "m", tiny_llama(tokenizer), tokenizer, log, info={"x": 1})
    finally:
        os.umask(previous)
    for name in ("model.safetensors", "config.json", "tokenizer.json", "train_log.csv", "finetune_info.json"):
        mode = stat.S_IMODE((tmp_path / "m" / name).stat().st_mode)
        assert mode == 0o666 & ~umask, (name, oct(mode))


def test_set_aside_never_overwrites_an_earlier_one(tmp_path):
    from kernels.io import set_aside

    first = tmp_path / "state.json"
    first.write_text("1")
    a = set_aside(first, "test")
    first.write_text("2")
    b = set_aside(first, "test")
    assert a != b and a.read_text() == "1" and b.read_text() == "2"
