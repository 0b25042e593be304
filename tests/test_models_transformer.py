"""Transformer++: fla's parameter layout, agreement with transformers' own Llama, GQA and sliding windows."""

import importlib.util

import pytest
import torch

from kernels.models.common import decode_state_of
from kernels.models.transformer import TransformerConfig, TransformerForCausalLM

torch.set_num_threads(1)

# Recorded from fla 0.6.0 (fla/models/transformer/modeling_transformer.py, fla/layers/attn.py,
# fla/modules/mlp.py) for hidden 32, 4 heads, 2 kv heads, intermediate 256, vocab 64: name -> shape.
FLA_LAYER_KEYS = {
    "attn_norm.weight": (32,),
    "attn.q_proj.weight": (32, 32),
    "attn.k_proj.weight": (16, 32),
    "attn.v_proj.weight": (16, 32),
    "attn.o_proj.weight": (32, 32),
    "mlp_norm.weight": (32,),
    "mlp.gate_proj.weight": (256, 32),
    "mlp.up_proj.weight": (256, 32),
    "mlp.down_proj.weight": (32, 256),
}
FLA_TOP_KEYS = {"model.embeddings.weight": (64, 32), "model.norm.weight": (32,), "lm_head.weight": (64, 32)}


def tiny(**extra):
    fields = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_heads=4, num_kv_heads=2)
    fields.update(extra)
    return TransformerConfig(**fields)


def test_state_dict_matches_fla_layout():
    model = TransformerForCausalLM(tiny())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = dict(FLA_TOP_KEYS)
    for layer in range(2):
        expected.update({f"model.layers.{layer}.{k}": s for k, s in FLA_LAYER_KEYS.items()})
    assert shapes == expected


def test_qk_norm_and_bias_add_fla_parameters():
    keys = TransformerForCausalLM(tiny(qk_norm=True, qkv_bias=True)).state_dict().keys()
    for name in ("attn.q_norm.weight", "attn.k_norm.weight", "attn.q_proj.bias", "attn.v_proj.bias"):
        assert f"model.layers.0.{name}" in keys


def test_matches_transformers_llama():
    """Same weights under Llama's names give the same logits: rotary convention, GQA, norms, SwiGLU."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    ours = TransformerForCausalLM(tiny()).eval()
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, rms_norm_eps=1e-6, max_position_embeddings=128, tie_word_embeddings=False,
        attention_bias=False, mlp_bias=False)).eval()
    renames = [("model.embeddings.", "model.embed_tokens."), (".attn_norm.", ".input_layernorm."),
               (".mlp_norm.", ".post_attention_layernorm."), (".attn.", ".self_attn.")]
    state = {}
    for key, value in ours.state_dict().items():
        for old, new in renames:
            key = key.replace(old, new)
        state[key] = value
    missing, unexpected = llama.load_state_dict(state, strict=False)
    assert not unexpected and all("rotary" in k for k in missing)
    ids = torch.randint(0, 64, (2, 13))
    torch.testing.assert_close(ours(ids).logits, llama(ids).logits, rtol=1e-4, atol=1e-4)


def test_sliding_window_limits_attention_and_decodes_consistently():
    torch.manual_seed(1)
    windowed = TransformerForCausalLM(tiny(window_size=3)).eval()
    full = TransformerForCausalLM(tiny()).eval()
    full.load_state_dict(windowed.state_dict())
    ids = torch.randint(0, 64, (1, 10))
    with torch.no_grad():
        reference = windowed(ids).logits
        # the first 3 positions see the same keys with and without the window, later ones do not
        torch.testing.assert_close(reference[:, :3], full(ids).logits[:, :3])
        assert not torch.allclose(reference[:, 5:], full(ids).logits[:, 5:])
        # token 0 reaches position 2 through one layer and position 4 through two; not beyond
        altered = ids.clone()
        altered[0, 0] = (ids[0, 0] + 1) % 64
        changed = windowed(altered).logits
        torch.testing.assert_close(changed[:, 5:], reference[:, 5:])
        assert not torch.allclose(changed[:, 4], reference[:, 4])
        state, steps = None, []
        for t in range(ids.shape[1]):
            out = windowed(ids[:, t:t + 1], past_state=state, use_cache=True)
            state, steps = decode_state_of(out), steps + [out.logits]
    torch.testing.assert_close(torch.cat(steps, dim=1), reference, rtol=1e-4, atol=1e-4)


def test_bad_head_count_is_reported():
    with pytest.raises(ValueError, match="num_heads"):
        TransformerForCausalLM(tiny(num_heads=3))


@pytest.mark.skipif(importlib.util.find_spec("fla") is None, reason="fla is not installed")
def test_state_dict_keys_equal_fla():
    from fla.models import TransformerConfig as FlaConfig, TransformerForCausalLM as FlaModel

    fields = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_heads=4, num_kv_heads=2)
    try:
        fla_model = FlaModel(FlaConfig(**fields))
    except ImportError as err:  # fla's Transformer needs flash-attn (CUDA) even to be built
        pytest.skip(f"fla's Transformer cannot be built here: {err}")
    theirs = {k: tuple(v.shape) for k, v in fla_model.state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in TransformerForCausalLM(tiny()).state_dict().items()}
    assert ours == theirs
