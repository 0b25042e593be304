"""Fast checks of behaviours that no default test read before: each one fails on a bug that was planted in a
copy of the code while every default test still passed (warm-up taken as a step count, the evaluation's
autocast dtype recorded as float32 whatever the training one, the bundled checksum skipped, ``arch``
accepting fields the workflow sets itself)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd
import pytest
import torch

from test_training_support import finetune_hp, make_tokenizer, sentiment_frame, tiny_llama
from workflow_helpers import REPO

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def test_the_learning_rate_rises_during_warm_up(tokenizer, tmp_path):
    """warmup_ratio 0.5 of 8 steps: the lr climbs over 4 warm-up steps to its peak (reached by the 5th step:
    each step uses the lr of the steps before it, the first 0), then falls (a ratio taken as a step count
    would start at the peak and only fall)."""
    from kernels.training import finetune

    hp = finetune_hp(epochs=1, batch_size=8, lr=1e-3, warmup_ratio=0.5, max_length=32, log_every=1,
                     checkpoint_every=100)
    result = finetune(tiny_llama(tokenizer), tokenizer, sentiment_frame(64), hp, model_dir=tmp_path / "m",
                      checkpoint_dir=tmp_path / "ckpt", progress=False)
    lr = result.log.set_index("step")["lr"]
    assert result.total_steps == 8 and list(lr.index) == list(range(1, 9))
    warm_up, decay = lr.loc[1:5].tolist(), lr.loc[5:].tolist()
    assert all(a < b for a, b in zip(warm_up, warm_up[1:])), warm_up  # rising
    assert lr.loc[1] <= 0.5 * hp.lr and lr.loc[5] == pytest.approx(hp.lr) and max(lr) <= hp.lr * (1 + 1e-9)
    assert all(a > b for a, b in zip(decay, decay[1:])), decay  # then falling


def test_evaluation_records_the_training_autocast_dtype(tokenizer, tmp_path):
    """metrics.json's provenance says which autocast dtype the evaluation ran in: the fine-tuning one."""
    from kernels.models import build_classifier
    from kernels.tokenization import save_tokenizer
    from test_evaluation_workflow import advglue_sst2, load_script

    model_dir = tmp_path / "models" / "gla" / "sst2" / "seed0"
    model = build_classifier("gla", {"hidden_size": 32, "num_hidden_layers": 1, "num_heads": 2},
                             vocab_size=len(tokenizer), num_labels=2, pad_token_id=tokenizer.pad_token_id, seed=0)
    model.save_pretrained(model_dir)
    save_tokenizer(tokenizer, model_dir)
    glue, adv = tmp_path / "validation.parquet", tmp_path / "sst2.parquet"
    sentiment_frame(20, seed=3).to_parquet(glue)
    advglue_sst2().to_parquet(adv)
    evaluate = load_script("evaluate_model")
    for dtype in ("bfloat16", "float32"):
        metrics = tmp_path / dtype / "metrics.json"
        evaluate.main(config=str(model_dir / "config.json"), weights=str(model_dir / "model.safetensors"),
                      glue=[str(glue)], advglue=[str(adv)], predictions=str(tmp_path / dtype / "p.parquet"),
                      metrics=str(metrics), family="gla", task="sst2", model="gla", seed=0, batch_size=16,
                      bootstrap_samples=0, max_length=32, dtype=dtype)
        assert json.loads(metrics.read_text())["provenance"]["autocast_dtype"] == dtype


def test_the_evaluate_rule_passes_the_training_dtype(tmp_path):
    """... and the workflow hands the evaluation the fine-tuning dtype (per model, overrides included)."""
    from dag_helpers import merged_config, params_of

    from workflow_helpers import TINY

    config = merged_config(TINY, {"finetune": {"dtype": "bfloat16"},
                                  "models": {"mmfree": {"finetune": {"dtype": "float32"}}}})
    dtypes = {dict(w)["model"]: p["dtype"] for w, p in params_of(tmp_path, config, "evaluate").items()}
    assert dtypes == {"transformer_pp": "bfloat16", "gla": "bfloat16", "mmfree": "float32"}


def test_an_edited_bundled_file_fails_its_checksum(tmp_path):
    from kernels.data import DataValidationError, read_bundled_glue

    source = REPO / "resources" / "data"
    bundled = tmp_path / "data"
    shutil.copytree(source / "glue" / "rte", bundled / "glue" / "rte")
    shutil.copy(source / "SHA256SUMS", bundled / "SHA256SUMS")
    assert len(read_bundled_glue(bundled, "rte", "validation")) == 277  # untouched: reads
    path = bundled / "glue" / "rte" / "validation.tsv"
    text = path.read_text(encoding="utf-8")
    edited = text.replace("\tnot_entailment\n", "\tentailment\n", 1)  # one label flipped, still a valid file
    assert edited != text
    path.write_text(edited, encoding="utf-8")
    actual = hashlib.sha256(edited.encode()).hexdigest()
    with pytest.raises(DataValidationError, match=rf"{path}: SHA-256 {actual} does not match"):
        read_bundled_glue(bundled, "rte", "validation")


@pytest.mark.parametrize("family", ["transformer_pp", "gla", "mmfree"])
@pytest.mark.parametrize("field", ["vocab_size", "num_labels", "pad_token_id", "bos_token_id", "eos_token_id"])
def test_arch_refuses_fields_the_workflow_sets(family, field):
    """The workflow passes the vocabulary, labels and special tokens itself: in arch they would clash (the
    job would fail much later with a duplicate keyword), so the config check refuses them at start."""
    from kernels.models.arch_rules import arch_errors

    (error,) = arch_errors(family, {field: 3}, f"models.{family}.arch")
    assert error.startswith(f"models.{family}.arch.{field}: unknown field")
