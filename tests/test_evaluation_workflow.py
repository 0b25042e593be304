"""The four workflow scripts end to end on the file layout of DESIGN.md: fine-tune -> evaluate ->
AdvGLUE score -> tables, with two model families and two seeds (called through their ``main``)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from kernels.tokenization import save_tokenizer
from test_training_support import make_tokenizer, sentiment_frame

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
FAMILIES = {"transformer_pp": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2},
            "mmfree": {"hidden_size": 32, "num_hidden_layers": 2}}
HP = {"epochs": 2, "batch_size": 16, "lr": 3e-3, "weight_decay": 0.01, "warmup_ratio": 0.1, "max_grad_norm": 1.0,
      "max_length": 48, "bucket_batches": 4, "checkpoint_every": 4, "device": "cpu", "dtype": "float32",
      "threads": 1}


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "workflow_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # no `snakemake` global and not __main__: defines main only
    return module


def advglue_sst2(seed: int = 21) -> pd.DataFrame:
    """AdvGLUE-schema rows: typo (word) and distractor (sentence) attacks, plus human-written items."""
    base = sentiment_frame(30, seed=seed)
    rows = []
    for i, row in base.iterrows():
        kind = ("word", "TextBugger") if i % 3 == 0 else ("sentence", "StressTest") if i % 3 == 1 else ("human", "CheckList")
        text = row["text_a"]
        if kind[0] == "word":
            adv = text.replace(" is ", " iss ")
        elif kind[0] == "sentence":
            adv = text + " and false is not true"
        else:
            adv = "honestly , " + text
        rows.append({"idx": i, "text_a": adv, "text_b": None, "label": row["label"], "level": kind[0],
                     "method": kind[1], "original_text_a": None if kind[0] == "human" else text,
                     "original_text_b": None})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    tokenizer = make_tokenizer()
    save_tokenizer(tokenizer, root / "tokenizer")
    data = root / "data"
    (data / "glue" / "sst2").mkdir(parents=True)
    (data / "advglue").mkdir(parents=True)
    sentiment_frame(160, seed=2).to_parquet(data / "glue" / "sst2" / "train.parquet")
    sentiment_frame(50, seed=3).to_parquet(data / "glue" / "sst2" / "validation.parquet")
    advglue_sst2().to_parquet(data / "advglue" / "sst2.parquet")
    return root


def test_scripts_end_to_end(layout):
    families = list(FAMILIES)  # all three: a broken family module must fail here, not skip
    finetune, evaluate = load_script("finetune"), load_script("evaluate_model")
    advglue_score, tables_eval = load_script("advglue_score"), load_script("tables_eval")
    root = layout
    metrics_files, score_files, logs = [], [], []
    for family in families:
        for seed in (0, 1):
            model_dir = root / "models" / family / "sst2" / f"seed{seed}"
            finetune.main(train=str(root / "data/glue/sst2/train.parquet"), tokenizer=str(root / "tokenizer/tokenizer.json"),
                          config_out=str(model_dir / "config.json"), weights_out=str(model_dir / "model.safetensors"),
                          tokenizer_out=str(model_dir / "tokenizer.json"), train_log_out=str(model_dir / "train_log.csv"),
                          family=family, arch=FAMILIES[family], pretrained=None, revision=None, hp=HP, num_labels=2,
                          checkpoint_dir=str(root / "checkpoints" / family / f"seed{seed}"), seed=seed, threads=1,
                          log=str(root / "logs" / f"{family}-{seed}.log"))
            eval_dir = root / "eval" / family / "sst2" / f"seed{seed}"
            evaluate.main(config=str(model_dir / "config.json"), weights=str(model_dir / "model.safetensors"),
                          glue=[str(root / "data/glue/sst2/validation.parquet")],
                          advglue=[str(root / "data/advglue/sst2.parquet")],
                          predictions=str(eval_dir / "predictions.parquet"), metrics=str(eval_dir / "metrics.json"),
                          family=family, task="sst2", model=family, seed=seed, batch_size=16, bootstrap_samples=100,
                          max_length=48)
            score = root / "eval" / family / f"advglue_score_seed{seed}.json"
            advglue_score.main(predictions=[str(eval_dir / "predictions.parquet")],
                               dev=[str(root / "data/advglue/sst2.parquet")],
                               predictions_json=str(root / "eval" / family / f"advglue_predictions_seed{seed}.json"),
                               score=str(score), model=family, seed=seed)
            metrics_files.append(eval_dir / "metrics.json")
            score_files.append(score)
            logs.append(model_dir / "train_log.csv")

    metrics = json.loads(metrics_files[0].read_text())
    assert metrics["model"] == families[0] and metrics["seed"] == 0
    assert set(metrics["advglue"]["sst2"]["by_level"]) == {"word", "sentence", "human"}
    assert metrics["glue"]["validation"]["accuracy"]["n"] == 50
    preds = pd.read_parquet(metrics_files[0].parent / "predictions.parquet")
    assert preds.groupby("dataset").size().to_dict() == {"advglue": 30, "advglue_original": 20, "glue": 50}
    official = json.loads((root / "eval" / families[0] / "advglue_predictions_seed0.json").read_text())
    adv_rows = preds[preds["dataset"] == "advglue"].sort_values("idx")
    assert official == {"sst2": adv_rows["pred"].tolist()}
    score = json.loads(score_files[0].read_text())
    assert score["complete"] is False and score["missing_tasks"] == ["qqp", "mnli", "qnli", "rte"]
    assert score["score"] == pytest.approx(metrics["advglue"]["sst2"]["metrics"]["accuracy"]["value"])
    assert "fine-tune" in (root / "logs" / f"{families[0]}-0.log").read_text()  # progress bar went to the log

    tables = root / "tables"
    tables_eval.main(metrics=[str(p) for p in metrics_files], scores=[str(p) for p in score_files],
                     train_logs=[str(p) for p in logs], models={f: {"label": f.upper()} for f in families},
                     metrics_out=str(tables / "metrics.csv"), scores_out=str(tables / "advglue_scores.csv"),
                     throughput_out=str(tables / "finetune_throughput.csv"),
                     predictions=[str(p.parent / "predictions.parquet") for p in metrics_files])
    table = pd.read_csv(tables / "metrics.csv")
    assert list(table.columns[:13]) == ["model", "model_label", "task", "seed", "dataset", "split", "level", "method",
                                        "metric", "value", "ci_low", "ci_high", "n"]
    assert set(table["metric"]) == {"accuracy", "attack_success_rate", "robustness_drop", "robustness_drop_unpaired",
                                    "paired_adversarial_accuracy", "majority_prediction_share"}
    # two seeds: every row with an interval also has the two-level one over seeds, around the mean
    has_ci = table["ci_low"].notna()
    assert table.loc[has_ci, "ci_low_over_seeds"].notna().all()
    assert (table.loc[has_ci, "ci_low_over_seeds"] <= table.loc[has_ci, "mean_over_seeds"] + 1e-12).all()
    row = table[(table["model"] == families[0]) & (table["seed"] == 0) & (table["dataset"] == "glue")].iloc[0]
    assert row["value"] == pytest.approx(metrics["glue"]["validation"]["accuracy"]["value"])
    assert row["model_label"] == families[0].upper() and row["n_seeds"] == 2
    both = table[(table["model"] == families[0]) & (table["dataset"] == "glue")
                 & (table["metric"] == row["metric"])]["value"]
    assert row["mean_over_seeds"] == pytest.approx(both.mean())
    scores = pd.read_csv(tables / "advglue_scores.csv")
    assert set(scores["task"]) == {"overall", "sst2"} and not scores["complete"].any()
    throughput = pd.read_csv(tables / "finetune_throughput.csv")
    assert len(throughput) == 2 * len(families)
    assert (throughput["steps"] == 20).all() and (throughput["tokens_per_s_median"] > 0).all()
    assert not (root / "checkpoints").exists() or not any((root / "checkpoints").rglob("latest.json"))


@pytest.mark.heavy  # 35 s: a fine-tune killed and resumed
def test_finetune_resumes_after_sigkill(layout, tmp_path):
    """A real SIGKILL mid-run: the rerun resumes from the checkpoint and ends with the same weights."""
    import safetensors.torch

    hp = dict(HP, epochs=20, checkpoint_every=2)  # long enough to be killed after step 4 on any machine

    def cmd(model_dir, ckpt):
        return [sys.executable, str(REPO / "workflow_scripts" / "finetune.py"), "--train",
                str(layout / "data/glue/sst2/train.parquet"), "--tokenizer", str(layout / "tokenizer/tokenizer.json"),
                "--model-dir", str(model_dir), "--family", "transformer_pp", "--arch", json.dumps(FAMILIES["transformer_pp"]),
                "--hp", json.dumps(hp), "--num-labels", "2", "--checkpoint-dir", str(ckpt), "--seed", "0"]
    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen(cmd(tmp_path / "killed", ckpt), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        latest = ckpt / "latest.json"
        if latest.exists() and json.loads(latest.read_text())["step"] >= 4:
            proc.kill()
            break
        time.sleep(0.02)
    else:
        proc.kill()
    proc.wait()
    # A run that never wrote a periodic checkpoint (or finished before one was seen) is a failure: the
    # resume path would otherwise go untested.
    assert proc.returncode != 0, "the fine-tune finished without a checkpoint at step >= 4 being seen"
    assert (ckpt / "latest.json").exists() and not (tmp_path / "killed" / "model.safetensors").exists()
    subprocess.run(cmd(tmp_path / "killed", ckpt), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(cmd(tmp_path / "clean", tmp_path / "ckpt-clean"), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    a = safetensors.torch.load_file(tmp_path / "killed" / "model.safetensors")
    b = safetensors.torch.load_file(tmp_path / "clean" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not ckpt.exists()


def test_finetune_from_pretrained_checkpoint(layout, tmp_path):
    """params.pretrained: backbone weights come from a causal-LM checkpoint dir with its tokenizer."""
    from kernels.models import causal_lm_class, classifier_class, config_class
    from kernels.tokenization import load_tokenizer

    tokenizer = load_tokenizer(layout / "tokenizer")
    cfg = config_class("transformer_pp")(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                         **FAMILIES["transformer_pp"])
    torch.manual_seed(5)
    lm = causal_lm_class("transformer_pp")(cfg)
    lm.save_pretrained(tmp_path / "pretrained")
    save_tokenizer(tokenizer, tmp_path / "pretrained")
    finetune = load_script("finetune")
    out = tmp_path / "model"
    finetune.main(train=str(layout / "data/glue/sst2/train.parquet"), tokenizer=None,
                  config_out=str(out / "config.json"), weights_out=str(out / "model.safetensors"),
                  tokenizer_out=str(out / "tokenizer.json"), train_log_out=str(out / "train_log.csv"),
                  family="transformer_pp", arch=None, pretrained=str(tmp_path / "pretrained"), revision=None,
                  hp=dict(HP, epochs=1, lr=1e-9, warmup_ratio=0.0), num_labels=2,
                  checkpoint_dir=str(tmp_path / "ckpt"), seed=0)
    tuned = classifier_class("transformer_pp").from_pretrained(out)
    # with a negligible learning rate the backbone is still the pretrained one
    lm_state = lm.state_dict()
    for name, value in tuned.model.state_dict().items():
        assert torch.allclose(value, lm_state[f"model.{name}"], atol=1e-6), name
