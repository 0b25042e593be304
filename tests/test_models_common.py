"""Behaviour every family must share: padding, save/load, incremental decode, checkpoint loading."""

import json
import logging
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from kernels.models.common import decode_state_of
from kernels.models import (FAMILIES, build_classifier, causal_lm_class, classifier_class, config_class,
                            family_for_model_type, load_classifier)
from kernels.models.common import CheckpointError, state_nbytes

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
VOCAB = 64
PAD = 0
TINY_ARCH = {
    "transformer_pp": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 4, "num_kv_heads": 2},
    "gla": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2},
    "mmfree": {"hidden_size": 32, "num_hidden_layers": 2},
}


def tiny_config(family, **extra):
    return config_class(family)(vocab_size=VOCAB, pad_token_id=PAD, **TINY_ARCH[family], **extra)


def random_ids(batch, length, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, length), generator=generator)


@pytest.fixture(params=sorted(FAMILIES))
def family(request):
    return request.param


def test_padding_does_not_change_the_prefix(family):
    torch.manual_seed(0)
    model = classifier_class(family)(tiny_config(family, num_labels=3)).eval()
    ids = random_ids(2, 12)
    ids[1, 7:] = PAD
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    padded = model(ids, attention_mask=mask)
    alone = model(ids[1:, :7])
    torch.testing.assert_close(padded.logits[1], alone.logits[0], rtol=1e-5, atol=1e-5)
    # the backbone's hidden states of the real tokens are unchanged too
    hidden_padded = model.model(ids, attention_mask=mask).last_hidden_state[1, :7]
    hidden_alone = model.model(ids[1:, :7]).last_hidden_state[0]
    torch.testing.assert_close(hidden_padded, hidden_alone, rtol=1e-5, atol=1e-5)
    # and the pooled token is the last real one, not the last position
    assert not torch.allclose(padded.logits[1], model(ids[1:]).logits[0])


def test_forward_backward_and_loss(family):
    torch.manual_seed(1)
    model = classifier_class(family)(tiny_config(family, num_labels=2))
    ids = random_ids(3, 9, seed=1)
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    labels = torch.tensor([0, 1, 1])
    out = model(ids, attention_mask=mask, labels=labels)
    assert out.logits.shape == (3, 2)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), \
        [n for n, g in grads.items() if g is None]
    assert grads["score.weight"].abs().sum() > 0
    assert grads["model.embeddings.weight"].abs().sum() > 0


def test_left_padding_is_rejected(family):
    model = classifier_class(family)(tiny_config(family, num_labels=2))
    mask = torch.tensor([[0, 1, 1]])
    with pytest.raises(ValueError, match="right padding"):
        model(random_ids(1, 3), attention_mask=mask)


def test_save_and_load_round_trip(family, tmp_path):
    torch.manual_seed(2)
    model = classifier_class(family)(tiny_config(family, num_labels=2)).eval()
    ids = random_ids(2, 6, seed=2)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    reloaded = classifier_class(family).from_pretrained(tmp_path).eval()
    torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, rtol=0, atol=0)
    lm = causal_lm_class(family)(tiny_config(family)).eval()
    lm.save_pretrained(tmp_path / "lm")
    lm_reloaded = causal_lm_class(family).from_pretrained(tmp_path / "lm").eval()
    torch.testing.assert_close(lm_reloaded(ids).logits, lm(ids).logits, rtol=0, atol=0)


def test_incremental_decode_equals_full_forward(family):
    torch.manual_seed(3)
    lm = causal_lm_class(family)(tiny_config(family)).eval()
    ids = random_ids(2, 11, seed=3)
    with torch.no_grad():
        full = lm(ids).logits
        prefill = lm(ids[:, :4], use_cache=True)
        steps = [prefill.logits]
        state = decode_state_of(prefill)
        for t in range(4, ids.shape[1]):
            out = lm(ids[:, t:t + 1], past_state=state, use_cache=True)
            steps.append(out.logits)
            state = decode_state_of(out)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-4, atol=1e-4)
    assert len(state) == lm.config.num_hidden_layers
    assert state_nbytes(state) > 0


def test_bfloat16_forward_runs(family):
    torch.manual_seed(4)
    model = classifier_class(family)(tiny_config(family, num_labels=2)).eval()
    ids = random_ids(2, 8, seed=4)
    reference = model(ids).logits
    out = model.to(torch.bfloat16)(ids).logits
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, rtol=0.1, atol=0.1)


def test_state_sizes():
    assert state_nbytes([torch.zeros(2, 3), (torch.zeros(4, dtype=torch.bfloat16), None)]) == 2 * 3 * 4 + 4 * 2
    with pytest.raises(TypeError):
        state_nbytes(["not a tensor"])


def test_recurrent_state_shapes_do_not_grow():
    for family in ("gla", "mmfree"):
        lm = causal_lm_class(family)(tiny_config(family)).eval()
        with torch.no_grad():
            short = decode_state_of(lm(random_ids(1, 3), use_cache=True))
            long = decode_state_of(lm(random_ids(1, 30), use_cache=True))
        assert state_nbytes(short) == state_nbytes(long)
        assert all(s.dtype == torch.float32 for s in long)
    lm = causal_lm_class("transformer_pp")(tiny_config("transformer_pp")).eval()
    with torch.no_grad():
        short = decode_state_of(lm(random_ids(1, 3), use_cache=True))
        long = decode_state_of(lm(random_ids(1, 30), use_cache=True))
    assert state_nbytes(long) == 10 * state_nbytes(short)


def test_default_tiny_models_have_1_to_2_million_parameters():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    vocab = config["tokenizer"]["vocab_size"]
    for name, spec in config["models"].items():
        model = build_classifier(spec["family"], spec["arch"], vocab_size=vocab, num_labels=2, pad_token_id=0)
        count = sum(p.numel() for p in model.parameters())
        assert 1_000_000 <= count <= 2_000_000, (name, count)


# ------------------------------------------------------------------------- loading a pretrained LM

def write_causal_lm_checkpoint(family, directory: Path, seed=5):
    """A tiny causal LM saved in the upstream layout (config.json + model.safetensors with model.*/lm_head.*)."""
    torch.manual_seed(seed)
    lm = causal_lm_class(family)(tiny_config(family))
    lm.save_pretrained(directory)
    return lm


def test_load_classifier_takes_every_backbone_weight(family, tmp_path, caplog):
    lm = write_causal_lm_checkpoint(family, tmp_path)
    keys = load_file(str(tmp_path / "model.safetensors")).keys()
    assert any(k.startswith("lm_head.") for k in keys) and all(k.startswith(("model.", "lm_head.")) for k in keys)
    with caplog.at_level(logging.INFO, logger="kernels.models.common"):
        model = load_classifier(family, tmp_path, num_labels=3)
    assert model.config.num_labels == 3 and model.score.weight.shape[0] == 3
    for name, tensor in lm.model.state_dict().items():
        assert torch.equal(model.model.state_dict()[name], tensor), name
    assert "score.weight" in caplog.text and "lm_head.weight" in caplog.text
    ids = random_ids(2, 5)
    torch.testing.assert_close(model.model(ids).last_hidden_state, lm.model(ids).last_hidden_state)


def test_load_classifier_sharded_and_dtype(family, tmp_path):
    lm = write_causal_lm_checkpoint(family, tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    (tmp_path / "model.safetensors").unlink()
    keys = sorted(state)
    halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for file, part in halves.items():
        save_file({k: state[k].contiguous() for k in part}, str(tmp_path / file))
    index = {"metadata": {}, "weight_map": {k: f for f, part in halves.items() for k in part}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    model = load_classifier(family, tmp_path, num_labels=2, torch_dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    torch.testing.assert_close(model.model.embeddings.weight.float(),
                               lm.model.embeddings.weight.detach().bfloat16().float())


def test_load_classifier_errors(tmp_path):
    family = "gla"
    write_causal_lm_checkpoint(family, tmp_path)
    # wrong family for this checkpoint
    with pytest.raises(CheckpointError, match="model_type"):
        load_classifier("mmfree", tmp_path, num_labels=2)
    # a missing backbone weight is named
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["model.layers.1.attn.q_proj.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"model\.layers\.1\.attn\.q_proj\.weight"):
        load_classifier(family, tmp_path, num_labels=2)
    # a mis-shaped weight is named with its file
    state["model.layers.1.attn.q_proj.weight"] = torch.zeros(3, 3)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"q_proj\.weight in model\.safetensors"):
        load_classifier(family, tmp_path, num_labels=2)


@pytest.mark.parametrize("family", ["transformer_pp", "gla"])
def test_legacy_fused_mlp_checkpoints_are_split(family, tmp_path):
    lm = write_causal_lm_checkpoint(family, tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    for layer in range(2):
        prefix = f"model.layers.{layer}.mlp."
        state[prefix + "gate_proj.weight"] = torch.cat([state[prefix + "gate_proj.weight"],
                                                        state.pop(prefix + "up_proj.weight")])
    save_file(state, str(tmp_path / "model.safetensors"))
    model = load_classifier(family, tmp_path, num_labels=2)
    ids = random_ids(2, 5)
    torch.testing.assert_close(model.model(ids).last_hidden_state, lm.model(ids).last_hidden_state)


def test_pickled_checkpoints_need_allow_pickle(tmp_path):
    lm = write_causal_lm_checkpoint("transformer_pp", tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    (tmp_path / "model.safetensors").unlink()
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="allow_pickle"):
        load_classifier("transformer_pp", tmp_path, num_labels=2)
    model = load_classifier("transformer_pp", tmp_path, num_labels=2, allow_pickle=True)
    assert torch.equal(model.model.norm.weight, lm.model.norm.weight)


def test_missing_config_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="config.json"):
        load_classifier("gla", tmp_path, num_labels=2)


def test_family_for_model_type():
    assert family_for_model_type("hgrn_bit") == "mmfree"
    assert family_for_model_type("transformer") == "transformer_pp"
    with pytest.raises(ValueError, match="unknown model_type"):
        family_for_model_type("llama")


def test_auto_registration_leaves_other_owners_alone():
    from transformers import AutoConfig, PretrainedConfig

    from kernels.models.common import register_with_auto_classes
    from kernels.models.gla import GLAForCausalLM, GLAForSequenceClassification, GLAModel

    class UpstreamConfig(PretrainedConfig):  # stands in for fla's config owning a model type
        model_type = "kernels_test_owned"

    class OurConfig(PretrainedConfig):
        model_type = "kernels_test_owned"

    class FreshConfig(PretrainedConfig):
        model_type = "kernels_test_fresh"

    def heads_for(config):
        return tuple(type(f"{base.__name__}ForTest", (base,), {"config_class": config})
                     for base in (GLAModel, GLAForCausalLM, GLAForSequenceClassification))

    AutoConfig.register("kernels_test_owned", UpstreamConfig)
    assert register_with_auto_classes(OurConfig, *heads_for(OurConfig)) is False
    assert register_with_auto_classes(FreshConfig, *heads_for(FreshConfig), defer_to_packages=("json",)) is False
    assert register_with_auto_classes(FreshConfig, *heads_for(FreshConfig)) is True
    assert type(AutoConfig.for_model("kernels_test_fresh")) is FreshConfig


# --- activation checkpointing ------------------------------------------------------------------------

def _loss_and_grads(model, ids, mask, labels, dtype=None):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
        loss = model(ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


def test_activation_checkpointing_gives_the_same_gradients(family):
    from kernels.models.common import set_activation_checkpointing

    torch.manual_seed(0)
    model = classifier_class(family)(tiny_config(family))
    model.train()
    ids, mask = random_ids(3, 20), torch.ones(3, 20, dtype=torch.long)
    mask[1, 13:] = 0
    labels = torch.tensor([0, 1, 0])
    for dtype in (None, torch.bfloat16):
        plain_loss, plain = _loss_and_grads(model, ids, mask, labels, dtype)
        set_activation_checkpointing(model, True)
        assert all(layer.gradient_checkpointing for layer in model.model.layers)
        kept_loss, kept = _loss_and_grads(model, ids, mask, labels, dtype)
        set_activation_checkpointing(model, False)
        assert not any(layer.gradient_checkpointing for layer in model.model.layers)
        # the recomputation repeats exactly the same operations: equal, not just close
        assert torch.equal(kept_loss, plain_loss)
        for name in plain:
            assert torch.equal(kept[name], plain[name]), (dtype, name)


def test_transformers_gradient_checkpointing_switch_works(family):
    """transformers' own API (``gradient_checkpointing_enable``) turns on the per-block recomputation."""
    import warnings

    model = classifier_class(family)(tiny_config(family))
    model.train()
    assert model.supports_gradient_checkpointing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # renamed to activation_checkpointing_enable in 5.2x
        model.gradient_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.model.layers)
    calls = []
    for layer in model.model.layers:
        inner = layer._gradient_checkpointing_func
        layer._gradient_checkpointing_func = lambda fn, *args, _inner=inner, **kw: (calls.append(1), _inner(fn, *args, **kw))[1]
    model(random_ids(2, 9), labels=torch.tensor([0, 1])).loss.backward()
    assert len(calls) == len(model.model.layers)  # every decoder block went through torch.utils.checkpoint


def test_our_checkpointing_switch_skips_the_recomputation_without_autograd(family, monkeypatch):
    """``set_activation_checkpointing`` behaves alike on every accepted transformers: under ``no_grad``
    (nothing to replay) blocks run as they are. transformers 5.17 itself sends them through
    torch.utils.checkpoint there too; CI runs this test on 5.17 as well (.ci/run)."""
    import transformers.modeling_utils as modeling_utils

    from kernels.models.common import set_activation_checkpointing

    calls = []
    original = modeling_utils.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    # the function both switches (activation_ / gradient_checkpointing_enable) bind into every block
    monkeypatch.setattr(modeling_utils, "checkpoint", counting)
    model = classifier_class(family)(tiny_config(family))
    model.train()
    set_activation_checkpointing(model, True)
    with torch.no_grad():
        model(random_ids(2, 9))
    assert calls == []
    model(random_ids(2, 9), labels=torch.tensor([0, 1])).loss.backward()
    assert len(calls) == len(model.model.layers)
    set_activation_checkpointing(model, False)
