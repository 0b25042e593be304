"""Fine-tuning loop: bucketing, padding, optimiser groups, determinism, resume, failure handling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch

from kernels.training import (FinetuneHyperparams, encode_examples, finetune, pad_batch, parameter_groups,
                              plan_batches)
from kernels.training.loop import LOG_COLUMNS, total_steps_for
from test_training_support import entailment_frame, finetune_hp, make_tokenizer, sentiment_frame, tiny_llama

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


small_hp = finetune_hp


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --- batching -------------------------------------------------------------------------------------

def test_plan_batches_covers_every_example_once_with_length_buckets():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, size=203)
    plan = plan_batches(lengths, batch_size=8, bucket_batches=5, seed=1, epoch=0)
    flat = np.concatenate(plan)
    assert sorted(flat.tolist()) == list(range(203))
    assert len(plan) == -(-203 // 8)
    assert sum(len(b) < 8 for b in plan) == 1  # only the last mega-batch leaves a short batch
    # Bucketing: the padding waste is far below that of random batches of the same size.
    waste = sum(lengths[b].max() * len(b) - lengths[b].sum() for b in plan)
    shuffled = rng.permutation(203)
    random_waste = sum(lengths[b].max() * len(b) - lengths[b].sum()
                       for b in np.array_split(shuffled, len(plan)))
    assert waste < 0.35 * random_waste


def test_plan_batches_is_seeded_per_epoch():
    lengths = np.arange(100) % 17
    same = plan_batches(lengths, 4, 3, seed=5, epoch=2)
    again = plan_batches(lengths, 4, 3, seed=5, epoch=2)
    other_epoch = plan_batches(lengths, 4, 3, seed=5, epoch=3)
    assert all(np.array_equal(a, b) for a, b in zip(same, again))
    assert not all(np.array_equal(a, b) for a, b in zip(same, other_epoch))


def test_pad_batch_pads_on_the_right():
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_token_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_encode_examples_uses_pair_template_and_truncates(tokenizer):
    frame = entailment_frame(4)
    encoded = encode_examples(tokenizer, frame, max_length=64)
    eos = tokenizer.convert_tokens_to_ids("</s>")
    first = encoded.input_ids[0]
    assert first.count(eos) == 2 and first[-1] == eos  # A </s> B </s>
    single = encode_examples(tokenizer, sentiment_frame(4), max_length=64)
    assert single.input_ids[0].count(eos) == 1
    short = encode_examples(tokenizer, frame, max_length=6)
    assert max(len(ids) for ids in short.input_ids) == 6
    assert encoded.labels.tolist() == frame["label"].tolist()


def test_encode_examples_names_source_and_field(tokenizer):
    with pytest.raises(ValueError, match=r"train\.parquet.*'label'"):
        encode_examples(tokenizer, pd.DataFrame({"text_a": ["a"]}), 16, source="train.parquet")
    with pytest.raises(ValueError, match=r"train\.parquet: field 'text_a' is null in row 1"):
        encode_examples(tokenizer, pd.DataFrame({"text_a": ["a", None], "label": [0, 1]}), 16,
                        source="train.parquet")


def test_hyperparams_reject_unknown_and_bad_fields():
    with pytest.raises(ValueError, match="unknown field.*'epoch'"):
        FinetuneHyperparams.from_dict({"epoch": 2})
    with pytest.raises(ValueError, match="'dtype'"):
        FinetuneHyperparams.from_dict({"dtype": "float16"})
    assert FinetuneHyperparams.from_dict({"threads": 2, "lr": 0.1}).lr == 0.1


def test_no_weight_decay_on_norms_biases_and_embeddings(tokenizer):
    model = tiny_llama(tokenizer)
    decay, no_decay = parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    decay_names = {names[id(p)] for p in decay["params"]}
    assert "model.embed_tokens.weight" in no_decay_names
    assert any("norm" in n for n in no_decay_names)
    assert not any("norm" in n or "embed" in n for n in decay_names)
    assert "score.weight" in decay_names


# --- training -------------------------------------------------------------------------------------

def test_training_writes_outputs_and_learns(tokenizer, tmp_path):
    model = tiny_llama(tokenizer)
    frame = sentiment_frame(240)
    hp = small_hp(epochs=3)
    result = finetune(model, tokenizer, frame, hp, model_dir=tmp_path / "model",
                      checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert result.completed and result.steps == total_steps_for(240, hp) == 45
    files = {p.name for p in (tmp_path / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "train_log.csv"} <= files
    assert not any(name.endswith(".tmp") or name.startswith(".") for name in files)
    assert not (tmp_path / "ckpt").exists()  # removed once the outputs are written
    log = pd.read_csv(tmp_path / "model" / "train_log.csv")
    assert list(log.columns) == LOG_COLUMNS
    assert log["step"].tolist() == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 45]
    assert (log["tokens_per_s"] > 0).all() and log["elapsed_s"].is_monotonic_increasing
    assert log["loss"].iloc[-1] < 0.5 * log["loss"].iloc[0]
    # warm-up then linear decay: peak lr after 5 warm-up steps (10% of 45), then decreasing
    assert log["lr"].max() <= hp.lr + 1e-12 and log["lr"].iloc[-1] < log["lr"].iloc[1]
    saved = safetensors.torch.load_file(tmp_path / "model" / "model.safetensors")
    assert torch.equal(saved["score.weight"], model.state_dict()["score.weight"])


def test_same_seed_gives_identical_weights(tokenizer, tmp_path):
    frame = sentiment_frame(96)
    runs = []
    for name in ("a", "b"):
        model = tiny_llama(tokenizer, seed=3)
        finetune(model, tokenizer, frame, small_hp(seed=3), model_dir=tmp_path / name,
                 checkpoint_dir=tmp_path / f"ckpt-{name}", progress=False)
        runs.append(weights(model))
    assert_same_weights(*runs)
    other = tiny_llama(tokenizer, seed=3)
    finetune(other, tokenizer, frame, small_hp(seed=4), model_dir=tmp_path / "c",
             checkpoint_dir=tmp_path / "ckpt-c", progress=False)
    assert not torch.equal(weights(other)["score.weight"], runs[0]["score.weight"])


def test_resumed_run_matches_uninterrupted_run(tokenizer, tmp_path):
    frame = sentiment_frame(120)  # 8 batches per epoch, 16 steps in all
    hp = small_hp(checkpoint_every=3)
    full = tiny_llama(tokenizer)
    full_result = finetune(full, tokenizer, frame, hp, model_dir=tmp_path / "full",
                           checkpoint_dir=tmp_path / "ckpt-full", progress=False)

    first = tiny_llama(tokenizer)
    stopped = finetune(first, tokenizer, frame, hp, model_dir=tmp_path / "resumed",
                       checkpoint_dir=tmp_path / "ckpt", stop_after_steps=10, progress=False)
    assert not stopped.completed and stopped.steps == 10
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    latest = json.loads((tmp_path / "ckpt" / "latest.json").read_text())
    assert latest["step"] == 10  # crosses the epoch boundary at step 8
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["latest.json", "step-00000010"]

    fresh = tiny_llama(tokenizer, seed=99)  # different init: everything must come from the checkpoint
    resumed = finetune(fresh, tokenizer, frame, hp, model_dir=tmp_path / "resumed",
                       checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert resumed.completed and resumed.steps == full_result.steps == 16
    assert_same_weights(weights(fresh), weights(full))
    assert resumed.log["step"].tolist() == full_result.log["step"].tolist()
    assert resumed.log["loss"].tolist() == full_result.log["loss"].tolist()
    assert not (tmp_path / "ckpt").exists()


def test_non_finite_loss_stops_with_step_and_keeps_checkpoint(tokenizer, tmp_path):
    model = tiny_llama(tokenizer)
    calls = {"n": 0}

    def poison_on_sixth_forward(module, args, kwargs):
        # A real failure mode: the weights themselves become NaN (e.g. after an overflow).
        calls["n"] += 1
        if calls["n"] == 6:
            with torch.no_grad():
                module.model.embed_tokens.weight.fill_(float("nan"))

    model.register_forward_pre_hook(poison_on_sixth_forward, with_kwargs=True)
    with pytest.raises(FloatingPointError, match="non-finite training loss .* at step 6"):
        finetune(model, tokenizer, sentiment_frame(128), small_hp(checkpoint_every=2), model_dir=tmp_path / "m",
                 checkpoint_dir=tmp_path / "ckpt", progress=False)
    latest = json.loads((tmp_path / "ckpt" / "latest.json").read_text())
    assert latest["step"] == 4
    saved = safetensors.torch.load_file(tmp_path / "ckpt" / latest["dir"] / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in saved.values())
    assert not (tmp_path / "m" / "model.safetensors").exists()


@pytest.mark.parametrize("family", ["transformer_pp", "gla", "mmfree"])
def test_project_families_fine_tune_and_reload(family, tokenizer, tmp_path):
    from kernels.evaluation.predict import predict_frame
    from kernels.models import build_classifier, classifier_class

    arch = {"hidden_size": 32, "num_hidden_layers": 2, **({} if family == "mmfree" else {"num_heads": 2})}
    model = build_classifier(family, arch, vocab_size=len(tokenizer), num_labels=2,
                             pad_token_id=tokenizer.pad_token_id, seed=0)
    frame = entailment_frame(64)
    result = finetune(model, tokenizer, frame, small_hp(epochs=1, batch_size=16), model_dir=tmp_path / "m",
                      checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert result.completed and np.isfinite(result.log["loss"]).all()
    reloaded = classifier_class(family).from_pretrained(tmp_path / "m")
    a = predict_frame(model, tokenizer, frame, max_length=48, batch_size=7)
    b = predict_frame(reloaded, tokenizer, frame, max_length=48, batch_size=64)
    assert (a["pred"] == b["pred"]).all()
    np.testing.assert_allclose(a["prob"], b["prob"], atol=1e-5)


def test_label_out_of_range_is_named(tokenizer, tmp_path):
    frame = sentiment_frame(8).assign(label=[0, 1, 2, 0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="train.parquet: field 'label' has value 2 but the model has 2 labels"):
        finetune(tiny_llama(tokenizer), tokenizer, frame, small_hp(), model_dir=tmp_path / "m",
                 checkpoint_dir=tmp_path / "ckpt", progress=False, source="train.parquet")


def test_bfloat16_autocast_runs_on_cpu(tokenizer, tmp_path):
    model = tiny_llama(tokenizer)
    result = finetune(model, tokenizer, sentiment_frame(32), small_hp(epochs=1, dtype="bfloat16", device="auto"),
                      model_dir=tmp_path / "m", checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert result.completed and np.isfinite(result.log["loss"]).all()
    assert next(model.parameters()).dtype == torch.float32  # autocast: weights stay in float32
