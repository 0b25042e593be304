"""Memory settings of the fine-tuning loop: gradient accumulation by token budget and activation
checkpointing change how a step is computed, not the update it makes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kernels.models import build_classifier
from kernels.training import FinetuneHyperparams, train_classifier
from kernels.training.batching import EncodedExamples, pad_batch
from kernels.training.loop import optimizer_step, parameter_groups, split_batch
from test_training_support import finetune_hp

torch.set_num_threads(1)

ARCH = {"transformer_pp": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2},
        "gla": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2},
        "mmfree": {"hidden_size": 32, "num_hidden_layers": 2}}
FAMILIES = sorted(ARCH)


def tiny_model(family: str, seed: int = 0):
    return build_classifier(family, ARCH[family], vocab_size=64, num_labels=2, pad_token_id=0, seed=seed)


def random_examples(n: int, seed: int = 0, longest: int = 30) -> EncodedExamples:
    rng = np.random.default_rng(seed)
    ids = [rng.integers(1, 64, size=int(length)).tolist() for length in rng.integers(3, longest + 1, size=n)]
    return EncodedExamples(ids, rng.integers(0, 2, size=n))


def batch_of(examples: EncodedExamples) -> dict[str, torch.Tensor]:
    ids, mask = pad_batch(examples.input_ids, 0)
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.as_tensor(examples.labels)}


def hparams(**overrides) -> FinetuneHyperparams:
    values = dict(epochs=1, batch_size=12, max_length=32, bucket_batches=2, checkpoint_every=3, log_every=2)
    return finetune_hp(**{**values, **overrides})


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --- split_batch -----------------------------------------------------------------------------------

def test_split_batch_keeps_every_row_once_within_the_padded_token_budget():
    batch = batch_of(random_examples(13, seed=3))
    micro = split_batch(batch, max_tokens=64)
    assert len(micro) > 1
    lengths = batch["attention_mask"].sum(1)
    seen = []
    for part in micro:
        rows, width = part["input_ids"].shape
        assert rows * width <= 64 or rows == 1
        assert width == int(part["attention_mask"].sum(1).max())  # cut to its own longest row
        for ids, mask, label in zip(part["input_ids"], part["attention_mask"], part["labels"]):
            # find the source row: same tokens, same label
            match = [r for r in range(13) if int(lengths[r]) == int(mask.sum())
                     and torch.equal(batch["input_ids"][r, :int(mask.sum())], ids[:int(mask.sum())])
                     and int(batch["labels"][r]) == int(label)]
            assert match
            seen.append(match[0])
    assert sorted(set(seen)) == list(range(13)) and len(seen) == 13


def test_split_batch_returns_a_batch_within_the_budget_untouched():
    batch = batch_of(random_examples(5, seed=1))
    rows, width = batch["input_ids"].shape
    assert split_batch(batch, None)[0] is batch
    assert split_batch(batch, rows * width)[0] is batch
    assert len(split_batch(batch, rows * width - 1)) > 1


def test_hyperparams_check_the_memory_settings():
    assert FinetuneHyperparams.from_dict({"max_tokens_per_step": 512, "max_length": 128}).max_tokens_per_step == 512
    with pytest.raises(ValueError, match="'max_tokens_per_step': 64 .*>= max_length 128"):
        FinetuneHyperparams.from_dict({"max_tokens_per_step": 64, "max_length": 128})
    with pytest.raises(ValueError, match="'max_tokens_per_step'"):
        FinetuneHyperparams.from_dict({"max_tokens_per_step": 256.5})
    with pytest.raises(ValueError, match="'gradient_checkpointing'"):
        FinetuneHyperparams.from_dict({"gradient_checkpointing": "yes"})


# --- the update equals the full batch's ----------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_accumulated_micro_batches_make_the_full_batch_update(family):
    batch = batch_of(random_examples(12, seed=2))
    results = {}
    for budget in (None, 64):
        model = tiny_model(family)
        model.train()
        # plain SGD: the weights move by exactly the (clipped) gradient; AdamW's first step, about
        # lr * sign(g), would turn float noise in gradients that are ~0 into full-size differences
        optimizer = torch.optim.SGD(parameter_groups(model, 0.0), lr=0.5)
        hp = hparams(max_tokens_per_step=budget)
        assert (len(split_batch(batch, budget)) > 1) == (budget is not None)
        loss = optimizer_step(model, optimizer, batch, hp, torch.device("cpu"), step=1)
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results[budget] = (loss, grads, state(model))
    (loss_full, grads_full, weights_full), (loss_micro, grads_micro, weights_micro) = results[None], results[64]
    assert loss_micro == pytest.approx(loss_full, rel=1e-6)  # logged loss: the full batch's mean
    for name in grads_full:
        torch.testing.assert_close(grads_micro[name], grads_full[name], rtol=1e-5, atol=1e-7, msg=name)
    for name in weights_full:
        torch.testing.assert_close(weights_micro[name], weights_full[name], rtol=1e-5, atol=1e-6, msg=name)


# --- the loop with both settings ------------------------------------------------------------------

@pytest.mark.parametrize("family", ["mmfree", "transformer_pp"])
def test_memory_settings_leave_training_the_same(family, tmp_path):
    examples = random_examples(48, seed=4)
    runs = {}
    for name, extra in (("plain", {}), ("lean", {"gradient_checkpointing": True, "max_tokens_per_step": 96})):
        model = tiny_model(family)
        result = train_classifier(model, examples, hparams(**extra), pad_token_id=0,
                                  checkpoint_dir=tmp_path / name, progress=False)
        assert result.completed
        assert not any(layer.gradient_checkpointing for layer in model.model.layers)  # off again afterwards
        runs[name] = (result, state(model))
    (plain, plain_weights), (lean, lean_weights) = runs["plain"], runs["lean"]
    assert lean.tokens == plain.tokens  # real tokens, whatever the micro-batches
    assert lean.log["step"].tolist() == plain.log["step"].tolist()
    np.testing.assert_allclose(lean.log["loss"], plain.log["loss"], rtol=1e-5)
    assert (lean.log["tokens_per_s"] > 0).all()
    for key in plain_weights:
        torch.testing.assert_close(lean_weights[key], plain_weights[key], rtol=1e-4, atol=1e-5, msg=key)
    assert lean.memory_plan["gradient_checkpointing"] and lean.memory_plan["max_tokens_per_step"] == 96
    assert lean.memory_plan["peak_bytes"] < plain.memory_plan["peak_bytes"]


def test_resume_with_memory_settings_matches_uninterrupted_run(tmp_path):
    examples = random_examples(60, seed=5)  # 5 batches
    hp = hparams(gradient_checkpointing=True, max_tokens_per_step=96)
    full = tiny_model("gla")
    full_result = train_classifier(full, examples, hp, pad_token_id=0, checkpoint_dir=tmp_path / "full",
                                   progress=False)
    first = tiny_model("gla")
    stopped = train_classifier(first, examples, hp, pad_token_id=0, checkpoint_dir=tmp_path / "ckpt",
                               stop_after_steps=3, progress=False)
    assert not stopped.completed
    fresh = tiny_model("gla", seed=7)
    resumed = train_classifier(fresh, examples, hp, pad_token_id=0, checkpoint_dir=tmp_path / "ckpt",
                               progress=False)
    assert resumed.completed and resumed.tokens == full_result.tokens
    assert resumed.log["loss"].tolist() == full_result.log["loss"].tolist()
    for key, value in state(full).items():
        assert torch.equal(state(fresh)[key], value), key


def test_a_run_can_resume_with_other_memory_settings(tmp_path):
    """Out of memory half-way: resume from the checkpoint with checkpointing and a token budget."""
    examples = random_examples(60, seed=6)
    plain = hparams()
    reference = tiny_model("transformer_pp")
    train_classifier(reference, examples, plain, pad_token_id=0, checkpoint_dir=tmp_path / "ref", progress=False)
    train_classifier(tiny_model("transformer_pp"), examples, plain, pad_token_id=0, checkpoint_dir=tmp_path / "ckpt",
                     stop_after_steps=3, progress=False)
    model = tiny_model("transformer_pp", seed=9)
    result = train_classifier(model, examples, hparams(gradient_checkpointing=True, max_tokens_per_step=64),
                              pad_token_id=0, checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert result.completed and result.steps == 5
    for key, value in state(reference).items():
        torch.testing.assert_close(state(model)[key], value, rtol=1e-4, atol=1e-5, msg=key)
