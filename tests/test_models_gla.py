"""GLA: fla 0.6's parameter layout and the token mixer's math against a plain loop over time."""

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from kernels.models.common import decode_state_of
from kernels.models.gla import GLAConfig, GLAForCausalLM, GLAModel

torch.set_num_threads(1)

# Recorded from fla 0.6.0 (fla/layers/gla.py, fla/models/gla/modeling_gla.py, fla/modules/mlp.py) for
# hidden 32, expand_k 0.5, expand_v 1, 2 heads, fuse_norm=True, vocab 64 (intermediate 256): name -> shape.
FLA_LAYER_KEYS = {
    "attn_norm.weight": (32,),
    "attn.q_proj.weight": (16, 32),
    "attn.k_proj.weight": (16, 32),
    "attn.v_proj.weight": (32, 32),
    "attn.g_proj.weight": (32, 32),
    "attn.gk_proj.0.weight": (16, 32),
    "attn.gk_proj.1.weight": (16, 16),
    "attn.gk_proj.1.bias": (16,),
    "attn.o_proj.weight": (32, 32),
    "attn.g_norm_swish_gate.weight": (16,),
    "mlp_norm.weight": (32,),
    "mlp.gate_proj.weight": (256, 32),
    "mlp.up_proj.weight": (256, 32),
    "mlp.down_proj.weight": (32, 256),
}
FLA_TOP_KEYS = {"model.embeddings.weight": (64, 32), "model.norm.weight": (32,), "lm_head.weight": (64, 32)}


def tiny(**extra):
    fields = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_heads=2)
    fields.update(extra)
    return GLAConfig(**fields)


def test_config_defaults_follow_fla():
    config = GLAConfig()
    assert (config.expand_k, config.expand_v, config.num_heads, config.hidden_ratio) == (0.5, 1.0, 4, 4)
    assert (config.fuse_norm, config.use_output_gate, config.hidden_act, config.norm_eps) == (True, True, "swish", 1e-6)
    assert (config.gate_logit_normalizer, config.gate_low_rank_dim, config.clamp_min) == (16, 16, None)


def test_state_dict_matches_fla_layout():
    shapes = {k: tuple(v.shape) for k, v in GLAForCausalLM(tiny()).state_dict().items()}
    expected = dict(FLA_TOP_KEYS)
    for layer in range(2):
        expected.update({f"model.layers.{layer}.{k}": s for k, s in FLA_LAYER_KEYS.items()})
    assert shapes == expected


def test_unfused_norm_is_named_g_norm():
    keys = GLAForCausalLM(tiny(fuse_norm=False)).state_dict().keys()
    assert "model.layers.0.attn.g_norm.weight" in keys
    assert not any("g_norm_swish_gate" in k for k in keys)


def test_grouped_kv_heads_shrink_k_and_v():
    state = GLAForCausalLM(tiny(num_heads=2, num_kv_heads=1)).state_dict()
    assert tuple(state["model.layers.0.attn.k_proj.weight"].shape) == (8, 32)
    assert tuple(state["model.layers.0.attn.v_proj.weight"].shape) == (16, 32)
    assert tuple(state["model.layers.0.attn.gk_proj.1.weight"].shape) == (8, 16)


def reference_gla_layer(attn, x):
    """The layer written out step by step (ARCHITECTURES.md section 4), for one sequence batch."""
    B, T, _ = x.shape
    H, K, V = attn.num_heads, attn.head_k_dim, attn.head_v_dim
    q = attn.q_proj(x).view(B, T, H, K)
    k = attn.k_proj(x).view(B, T, H, K)
    v = attn.v_proj(x).view(B, T, H, V)
    alpha = F.logsigmoid(attn.gk_proj(x).view(B, T, H, K)) / 16
    state = torch.zeros(B, H, K, V)
    outputs = []
    for t in range(T):
        state = alpha[:, t].exp().unsqueeze(-1) * state + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        outputs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * K ** -0.5, state))
    o = torch.stack(outputs, dim=1)  # [B, T, H, V]
    o = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + attn.norm_eps) * attn.g_norm_swish_gate.weight
    o = o.reshape(B, T, H * V) * F.silu(attn.g_proj(x))
    return attn.o_proj(o), state


def test_token_mixer_matches_step_by_step_reference():
    torch.manual_seed(0)
    model = GLAModel(tiny()).eval()
    attn = model.layers[0].attn
    with torch.no_grad():
        attn.g_norm_swish_gate.weight.uniform_(0.5, 1.5)
        attn.gk_proj[1].bias.uniform_(-2, 2)
        x = torch.randn(2, 70, 32)  # longer than one 64-step chunk
        expected_out, expected_state = reference_gla_layer(attn, x)
        out, state = attn(x, use_cache=True)
    torch.testing.assert_close(out, expected_out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(state, expected_state, rtol=1e-4, atol=1e-5)


def test_padding_leaves_the_recurrent_state_alone():
    torch.manual_seed(1)
    model = GLAModel(tiny()).eval()
    ids = torch.randint(1, 64, (1, 9))
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 9), torch.zeros(1, 4)], dim=1).long()
    with torch.no_grad():
        alone = decode_state_of(model(ids, use_cache=True))
        with_pad = decode_state_of(model(padded, attention_mask=mask, use_cache=True))
    for a, b in zip(alone, with_pad):
        assert a.shape == (1, 2, 8, 16) and a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_unsupported_options_fail_clearly():
    with pytest.raises(NotImplementedError, match="use_short_conv"):
        GLAModel(tiny(use_short_conv=True))
    with pytest.raises(ValueError, match="expand_k"):
        GLAModel(tiny(hidden_size=30, num_heads=4))


@pytest.mark.skipif(importlib.util.find_spec("fla") is None, reason="fla is not installed")
def test_state_dict_keys_equal_fla():
    from fla.models import GLAConfig as FlaConfig, GLAForCausalLM as FlaModel

    fields = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_heads=2)
    theirs = {k: tuple(v.shape) for k, v in FlaModel(FlaConfig(**fields)).state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in GLAForCausalLM(tiny()).state_dict().items()}
    assert ours == theirs
