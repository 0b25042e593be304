"""HGRN-bit (MatMul-free LM): matmulfreellm's parameter layout, lower bounds, the MLGRU's math, packing."""

import pytest
import torch
import torch.nn.functional as F

from kernels.models.common import decode_state_of
from kernels.models.hgrn_bit import (HGRNBitConfig, HGRNBitForCausalLM, HGRNBitForSequenceClassification,
                                     HGRNBitModel)
from kernels.ops.bitlinear import BitLinear, PackedBitLinear, pack_bitlinears

torch.set_num_threads(1)

# Recorded from ridgerchu/matmulfreellm (mmfreelm/models/hgrn_bit/modeling_hgrn_bit.py,
# mmfreelm/layers/hgrn_bit.py, mmfreelm/ops/bitnet.py) for hidden 32, 2 layers, vocab 64
# (intermediate 256, so gate_proj is 2 * 256 x 32): name -> shape.
MMFREE_LAYER_KEYS = {
    "attn_norm.weight": (32,),
    "attn.i_proj.weight": (32, 32), "attn.i_proj.norm.weight": (32,),
    "attn.f_proj.weight": (32, 32), "attn.f_proj.norm.weight": (32,),
    "attn.g_proj.weight": (32, 32), "attn.g_proj.norm.weight": (32,),
    "attn.g_norm.weight": (32,),
    "attn.o_proj.weight": (32, 32), "attn.o_proj.norm.weight": (32,),
    "mlp_norm.weight": (32,),
    "mlp.gate_proj.weight": (512, 32), "mlp.gate_proj.norm.weight": (32,),
    "mlp.down_proj.weight": (32, 256), "mlp.down_proj.norm.weight": (256,),
}
MMFREE_TOP_KEYS = {"model.lower_bounds": (2, 32), "model.embeddings.weight": (64, 32), "model.norm.weight": (32,),
                   "lm_head.weight": (64, 32), "lm_head.norm.weight": (32,)}


def tiny(**extra):
    fields = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2)
    fields.update(extra)
    return HGRNBitConfig(**fields)


def test_state_dict_matches_matmulfreellm_layout():
    shapes = {k: tuple(v.shape) for k, v in HGRNBitForCausalLM(tiny()).state_dict().items()}
    expected = dict(MMFREE_TOP_KEYS)
    for layer in range(2):
        expected.update({f"model.layers.{layer}.{k}": s for k, s in MMFREE_LAYER_KEYS.items()})
    assert shapes == expected


def test_projections_are_bitlinear_and_the_classifier_head_is_not():
    model = HGRNBitForSequenceClassification(tiny(num_labels=2))
    layer = model.model.layers[0]
    for proj in (layer.attn.i_proj, layer.attn.f_proj, layer.attn.g_proj, layer.attn.o_proj,
                 layer.mlp.gate_proj, layer.mlp.down_proj):
        assert isinstance(proj, BitLinear)
    assert type(model.score) is torch.nn.Linear
    assert isinstance(HGRNBitForCausalLM(tiny()).lm_head, BitLinear)


def test_lower_bounds_start_at_zero_and_grow_with_depth():
    model = HGRNBitModel(tiny(num_hidden_layers=4))
    with torch.no_grad():
        model.lower_bounds.normal_()
    bounds = model.layer_lower_bounds()
    assert torch.equal(bounds[0], torch.zeros(32))
    assert (bounds[1:] >= bounds[:-1]).all() and (bounds < 1).all()
    # all-zero parameters (the init) give bounds 0, 1/L, 2/L, ...
    with torch.no_grad():
        model.lower_bounds.zero_()
    torch.testing.assert_close(model.layer_lower_bounds()[:, 0], torch.tensor([0.0, 0.25, 0.5, 0.75]))


def reference_mlgru(attn, x, lower_bound):
    """The MLGRU of mmfreelm written out step by step, forget gate in linear space."""
    f = torch.sigmoid(attn.f_proj(x))
    f = lower_bound + (1 - lower_bound) * f
    i = F.silu(attn.i_proj(x)) * (1 - f)
    h, outputs = torch.zeros(x.shape[0], x.shape[-1]), []
    for t in range(x.shape[1]):
        h = f[:, t] * h + i[:, t]
        outputs.append(h)
    h_all = torch.stack(outputs, dim=1)
    g = attn.g_proj(x)
    normed = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + 1e-6) * attn.g_norm.weight
    return attn.o_proj(normed * F.silu(h_all)), h


def test_token_mixer_matches_step_by_step_reference():
    torch.manual_seed(0)
    model = HGRNBitModel(tiny()).eval()
    with torch.no_grad():
        model.lower_bounds.normal_()
        model.layers[1].attn.g_norm.weight.uniform_(0.5, 1.5)
    attn = model.layers[1].attn  # layer 1: the lower bound applies
    bound = model.layer_lower_bounds()[1].detach()
    x = torch.randn(2, 40, 32)
    with torch.no_grad():
        expected_out, expected_state = reference_mlgru(attn, x, bound)
        out, state = attn(x, use_cache=True, lower_bound=bound)
    torch.testing.assert_close(out, expected_out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(state, expected_state, rtol=1e-4, atol=1e-5)
    assert state.shape == (2, 32) and state.dtype == torch.float32


def test_padding_leaves_the_recurrent_state_alone():
    torch.manual_seed(1)
    model = HGRNBitModel(tiny()).eval()
    ids = torch.randint(1, 64, (1, 9))
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 9), torch.zeros(1, 4)], dim=1).long()
    with torch.no_grad():
        alone = decode_state_of(model(ids, use_cache=True))
        with_pad = decode_state_of(model(padded, attention_mask=mask, use_cache=True))
    for a, b in zip(alone, with_pad):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_round_trip_keeps_trained_lower_bounds(tmp_path):
    torch.manual_seed(2)
    model = HGRNBitForSequenceClassification(tiny(num_labels=2)).eval()
    with torch.no_grad():
        model.model.lower_bounds.normal_()
    model.save_pretrained(tmp_path)
    reloaded = HGRNBitForSequenceClassification.from_pretrained(tmp_path)
    assert torch.equal(reloaded.model.lower_bounds, model.model.lower_bounds)
    # token-mixer projections keep mmfreelm's xavier init (gain 2^-2.5): bound 0.177 * sqrt(6 / 64)
    weight = HGRNBitModel(tiny()).layers[0].attn.i_proj.weight
    assert weight.abs().max() <= 2 ** -2.5 * (6 / 64) ** 0.5 + 1e-6


def test_packed_model_gives_the_same_logits():
    torch.manual_seed(3)
    model = HGRNBitForSequenceClassification(tiny(num_labels=2)).eval()
    ids = torch.randint(1, 64, (2, 7))
    with torch.no_grad():
        reference = model(ids).logits
        pack_bitlinears(model)
        packed = model(ids).logits
    assert isinstance(model.model.layers[0].mlp.gate_proj, PackedBitLinear)
    torch.testing.assert_close(packed, reference, rtol=1e-4, atol=1e-4)


def test_unsupported_options_fail_clearly():
    with pytest.raises(NotImplementedError, match="use_short_conv"):
        HGRNBitModel(tiny(use_short_conv=True))


# --- mixed precision: the gates' lean autograd form ------------------------------------------------------

@pytest.mark.parametrize("with_bound", [False, True])
@pytest.mark.parametrize("with_padding", [False, True])
def test_lean_gates_have_the_gradients_of_the_autograd_form(with_bound, with_padding):
    """The hand-written backward of the gates, in float64 (both forms compute the same formulas)."""
    from kernels.models.common import padding_keep_mask
    from kernels.models.hgrn_bit.modeling_hgrn_bit import _MLGRUGates, mlgru_gates

    torch.manual_seed(7)
    i_logits = (3 * torch.randn(2, 9, 16, dtype=torch.float64)).requires_grad_(True)
    f_logits = (3 * torch.randn(2, 9, 16, dtype=torch.float64)).requires_grad_(True)
    bound = torch.rand(16, dtype=torch.float64).requires_grad_(True) if with_bound else None
    mask = torch.ones(2, 9, dtype=torch.long)
    if with_padding:
        mask[1, 6:] = 0
    d_inputs, d_log_forget = torch.randn(2, 9, 16, dtype=torch.float64), torch.randn(2, 9, 16, dtype=torch.float64)
    leaves = [t for t in (i_logits, f_logits, bound) if t is not None]

    def grads(outputs):
        return torch.autograd.grad(outputs, leaves, (d_inputs, d_log_forget))

    plain = mlgru_gates(i_logits, f_logits, bound, mask if with_padding else None)
    keep = padding_keep_mask(mask, i_logits) if with_padding else None
    lean = _MLGRUGates.apply(i_logits, f_logits, bound, keep)
    for a, b in zip(lean, plain):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads(lean), grads(plain)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_autocast_block_keeps_half_the_activations():
    """Under bf16 autocast an HGRN-bit block keeps about 76 bytes per token and hidden unit for backward
    (the autograd forms of BitLinear and the gates kept about 148: fp32 copies of every projection's input)."""
    from kernels.training.memory import probe_layer

    model = HGRNBitForSequenceClassification(HGRNBitConfig(vocab_size=64, hidden_size=256, num_hidden_layers=2,
                                                            pad_token_id=0))
    layer = probe_layer(model, "bfloat16")
    assert layer.bytes_per_token / 256 < 100
    assert layer.fixed_bytes < 64 * 1024  # no bf16 copies of the ternary weights are kept


def test_autocast_gradients_follow_the_float32_ones():
    """End to end through the lean forms (lower bounds included): bf16 rounding only."""
    torch.manual_seed(8)
    model = HGRNBitForSequenceClassification(tiny(num_labels=2, pad_token_id=0, num_hidden_layers=3))
    with torch.no_grad():
        model.model.lower_bounds.normal_()  # non-trivial bounds, so their gradient is exercised
    ids = torch.randint(1, 64, (4, 12))
    mask = torch.ones_like(ids)
    mask[2, 8:] = 0
    labels = torch.tensor([0, 1, 1, 0])
    grads = {}
    for dtype in (None, torch.bfloat16):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            model(ids, attention_mask=mask, labels=labels).loss.backward()
        grads[dtype] = {n: p.grad.clone() for n, p in model.named_parameters()}
    for name in ("model.lower_bounds", "model.layers.1.attn.f_proj.weight", "model.layers.1.attn.i_proj.norm.weight",
                 "model.embeddings.weight"):
        a, b = grads[None][name].flatten(), grads[torch.bfloat16][name].flatten()
        assert F.cosine_similarity(a, b, dim=0) > 0.95, name
