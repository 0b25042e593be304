"""BitLinear (ternary weights, 8-bit activations, STE) and its 2-bit packed inference form."""

import math

import pytest
import torch

from kernels.ops.bitlinear import (BitLinear, PackedBitLinear, activation_quant, pack_ternary, ternary_codes,
                                   unpack_ternary, unpack_ternary_codes, weight_quant)

torch.set_num_threads(1)


def test_hand_computed_example():
    layer = BitLinear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.1, 0.0, 1.0], [0.3, 0.2, 0.9, -0.05]]))
    x = torch.tensor([[1.0, -2.0, 3.0, -5.0]])
    # By hand: mean|W| = 3.05 / 8 = 0.38125; W / 0.38125 rounds to codes [[1, 0, 0, 1], [1, 1, 1, 0]].
    # RMSNorm: x / sqrt(9.75); 8-bit codes = round(x * 127 / 5) = [25, -51, 76, -127], step 5 / (127 sqrt(9.75)).
    # y = codes_x . codes_w * step * 0.38125 = [25 - 127, 25 - 51 + 76] * ... = [-102, 50] * ...
    step = 5 / (127 * math.sqrt(9.75)) * 0.38125
    expected = torch.tensor([[-102 * step, 50 * step]])
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-7)
    codes, scale = ternary_codes(layer.weight)
    assert codes.tolist() == [[1, 0, 0, 1], [1, 1, 1, 0]]
    assert scale.item() == pytest.approx(0.38125)


def test_quantised_weights_take_exactly_three_values():
    torch.manual_seed(0)
    weight = torch.randn(64, 48)
    quantised = weight_quant(weight)
    scale = weight.abs().mean()
    values = torch.unique(quantised)
    assert len(values) == 3
    torch.testing.assert_close(values, torch.tensor([-1.0, 0.0, 1.0]) * scale)


def test_activation_quant_has_at_most_256_levels_per_token():
    torch.manual_seed(1)
    x = torch.randn(3, 1000)
    q = activation_quant(x)
    for row_x, row_q in zip(x, q):
        step = row_x.abs().max() / 127
        levels = row_q / step
        torch.testing.assert_close(levels, levels.round(), atol=1e-4, rtol=0)
        assert levels.abs().max() <= 127 + 1e-4


@pytest.mark.parametrize("in_features", [37, 40])
def test_packed_form_equals_training_form(in_features):
    torch.manual_seed(2)
    layer = BitLinear(in_features, 19, bias=True)
    with torch.no_grad():
        layer.norm.weight.uniform_(0.5, 1.5)
        layer.bias.normal_()
    packed, scale = pack_ternary(layer.weight.detach())
    assert packed.dtype == torch.uint8
    assert packed.shape == (19, math.ceil(in_features / 4))
    codes, _ = ternary_codes(layer.weight)
    assert torch.equal(unpack_ternary_codes(packed, in_features), codes)
    assert torch.equal(unpack_ternary(packed, scale, in_features), weight_quant(layer.weight.detach()))

    inference = PackedBitLinear.from_bitlinear(layer)
    x = torch.randn(3, 5, in_features) * 3
    torch.testing.assert_close(inference(x), layer(x).detach(), rtol=1e-5, atol=1e-5)
    # the packed state dict holds no float weight matrix
    assert "weight" not in inference.state_dict()
    assert inference.state_dict()["packed_weight"].numel() * 4 >= in_features * 19


def test_straight_through_gradients():
    torch.manual_seed(3)
    layer = BitLinear(16, 8)
    x = torch.randn(4, 16, requires_grad=True)
    y = layer(x)
    upstream = torch.randn_like(y)
    y.backward(upstream)
    # STE: d/dW = dout^T x_q, with x_q the quantised normalised input (not the ternary-weight derivative 0).
    x_q = activation_quant(layer.norm(x.detach()))
    torch.testing.assert_close(layer.weight.grad, upstream.t() @ x_q, rtol=1e-5, atol=1e-6)
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert layer.norm.weight.grad is not None and layer.norm.weight.grad.abs().sum() > 0


def test_bfloat16_forward_close_to_fp32():
    torch.manual_seed(4)
    layer = BitLinear(32, 8)
    x = torch.randn(2, 32)
    reference = layer(x)
    out = layer.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference.detach(), rtol=0.05, atol=0.05)


def test_pack_rejects_non_matrix():
    with pytest.raises(ValueError, match="2-D"):
        pack_ternary(torch.randn(2, 3, 4))


# --- mixed precision: the lean autograd form ----------------------------------------------------------

def _plain_bitlinear(layer, x):
    """The straight-through form written with autograd (as BitLinear computes outside autocast)."""
    from kernels.ops.bitlinear import activation_quant, weight_quant

    x_hat = layer.norm(x)
    x_q = x_hat + (activation_quant(x_hat) - x_hat).detach()
    w_q = layer.weight + (weight_quant(layer.weight) - layer.weight).detach()
    return torch.nn.functional.linear(x_q, w_q.to(x_q.dtype), None if layer.bias is None else layer.bias.to(x_q.dtype))


def _values_and_grads(layer, x, forward, upstream):
    layer.zero_grad(set_to_none=True)
    x.grad = None
    y = forward(layer, x)
    y.backward(upstream.to(y.dtype))
    return [y.detach().float(), x.grad, layer.weight.grad, layer.norm.weight.grad, layer.bias.grad]


@pytest.mark.parametrize("shape", [(3, 7, 48), (5, 48)])
def test_autocast_form_equals_autograd_form(shape):
    torch.manual_seed(5)
    layer = BitLinear(48, 24, bias=True)
    with torch.no_grad():
        layer.norm.weight.uniform_(0.5, 1.5)
        layer.bias.normal_()
    x = torch.randn(*shape, requires_grad=True)
    upstream = torch.randn(*shape[:-1], 24)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lean = _values_and_grads(layer, x, BitLinear.__call__, upstream)
        plain = _values_and_grads(layer, x, _plain_bitlinear, upstream)
    for name, a, b in zip(["y", "dx", "dW", "dgain", "dbias"], lean, plain):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=name)


def test_hand_written_backward_matches_autograd_without_bf16_rounding():
    """The lean form's backward (norm recomputed, STE) against autograd, with no bf16 cast in between
    (float64 tensors; both norms compute in fp32, hence the fp32 tolerance): a wrong formula is off by O(1)."""
    from kernels.ops.bitlinear import _AutocastBitLinear

    torch.manual_seed(6)
    layer = BitLinear(40, 12, bias=True).double()
    with torch.no_grad():
        layer.norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(6, 40, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(6, 12, dtype=torch.float64)

    def lean(module, inputs):
        return _AutocastBitLinear.apply(inputs, module.norm.weight, module.weight, module.bias, module.norm.eps,
                                        torch.float64)

    for a, b in zip(_values_and_grads(layer, x, lean, upstream), _values_and_grads(layer, x, _plain_bitlinear, upstream)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_autocast_keeps_only_the_input_and_per_token_scales():
    from kernels.training.memory import saved_tensor_bytes

    layer = BitLinear(256, 512)
    x = torch.randn(4, 32, 256, requires_grad=True)
    params = {p.untyped_storage().data_ptr() for p in layer.parameters()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kept = saved_tensor_bytes(lambda: layer(x), exclude=params)
    input_bytes = x.numel() * 4
    # the input itself and one fp32 factor per token; the autograd form kept ~3.5x the input more
    assert kept == input_bytes + 4 * 32 * 4


# --- packed inference: no host sync per forward ---------------------------------------------------------

def test_packed_forward_never_waits_for_the_device():
    """On the meta device any host sync (``bool(t)``, ``.item()``) raises: a forward that runs there reads
    no value back, so on CUDA it does not stall the stream once per BitLinear per token."""
    layer = PackedBitLinear.from_bitlinear(BitLinear(16, 8, bias=True)).to("meta")
    y = layer(torch.randn(2, 3, 16, device="meta"))
    assert y.shape == (2, 3, 8) and y.device.type == "meta"


def test_invalid_packed_codes_are_refused_when_loaded():
    from kernels.ops.bitlinear import check_packed_codes

    layer = PackedBitLinear.from_bitlinear(BitLinear(16, 8))
    state = layer.state_dict()
    check_packed_codes(state["packed_weight"])  # valid as packed
    state["packed_weight"][0, 0] = 0b11  # code 3 in the first slot
    with pytest.raises(ValueError, match="packed_weight holds the invalid 2-bit value 3"):
        layer.load_state_dict(state)
    with pytest.raises(ValueError, match="invalid 2-bit value 3"):
        unpack_ternary_codes(state["packed_weight"], 16)
