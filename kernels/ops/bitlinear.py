"""BitLinear: the ternary-weight, 8-bit-activation linear layer of the MatMul-free LM (BitNet b1.58 style).

Training form (``BitLinear``), as ``mmfreelm.ops.bitnet.BitLinear``:

1. ``x_hat = RMSNorm_gamma(x)`` with the layer's own norm (parameter ``norm.weight``, eps 1e-8);
2. per-token 8-bit absmax quantisation: ``s_x = 127 / max(|x_hat|)``, ``x_q = clamp(round(x_hat s_x), -128, 127) / s_x``;
3. per-tensor ternary absmean weights: ``m = mean|W|``, ``W_q = clamp(round(W / m), -1, 1) * m``;
4. ``y = x_q W_q^T`` (+ bias), with straight-through estimators ``x_hat + sg(x_q - x_hat)`` and ``W + sg(W_q - W)``.

Inference form (``PackedBitLinear``): the ternary codes are stored 2 bits each, four per byte, plus one fp32
scale; the product is computed on integer-valued activations and codes and rescaled once, which is what
makes the layer "matmul-free" on dedicated hardware. On CPU it is an ordinary float matmul on small integers
(exact in fp32 while ``127 * in_features < 2**24``).

The weight scale is the mean absolute value itself and codes are ``round(W / m)``; upstream multiplies by
``1 / m`` instead, which can differ only for weights exactly halfway between two codes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kernels.modules.norm import RMSNorm

ACTIVATION_LEVELS = 127.0
MIN_SCALE = 1e-5
BITLINEAR_NORM_EPS = 1e-8
CODES_PER_BYTE = 4


def activation_scale(x: torch.Tensor) -> torch.Tensor:
    """Per-token quantisation factor ``127 / max|x|`` over the last dimension (fp32, keepdim)."""
    return ACTIVATION_LEVELS / x.float().abs().amax(dim=-1, keepdim=True).clamp(min=MIN_SCALE)


def activation_codes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer-valued 8-bit codes (as fp32) and the per-token factor they were scaled by."""
    scale = activation_scale(x)
    return (x.float() * scale).round().clamp(-128, 127), scale


def activation_quant(x: torch.Tensor) -> torch.Tensor:
    """Fake-quantised activations (dequantised back to ``x``'s dtype)."""
    codes, scale = activation_codes(x)
    return (codes / scale).to(x.dtype)


def weight_scale(weight: torch.Tensor) -> torch.Tensor:
    """Per-tensor absmean scale ``max(mean|W|, 1e-5)`` as a 0-d fp32 tensor."""
    return weight.float().abs().mean().clamp(min=MIN_SCALE)


def ternary_codes(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes in {-1, 0, 1} (int8) and the scale such that the quantised weight is ``codes * scale``."""
    scale = weight_scale(weight)
    codes = (weight.float() / scale).round().clamp(-1, 1).to(torch.int8)
    return codes, scale


def weight_quant(weight: torch.Tensor) -> torch.Tensor:
    """Fake-quantised ternary weights ``{-1, 0, 1} * mean|W|`` in ``weight``'s dtype."""
    codes, scale = ternary_codes(weight)
    return (codes.float() * scale).to(weight.dtype)


def pack_ternary(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pack a 2-D weight into 2-bit ternary codes.

    Returns ``(packed, scale)``: ``packed`` is uint8 of shape ``[out, ceil(in / 4)]`` where each byte holds
    four codes ``c + 1 in {0, 1, 2}`` (lowest bits first); ``scale`` is the fp32 absmean scale.
    """
    if weight.dim() != 2:
        raise ValueError(f"pack_ternary expects a 2-D weight, got shape {tuple(weight.shape)}")
    codes, scale = ternary_codes(weight)
    out_features, in_features = codes.shape
    padded_in = -(-in_features // CODES_PER_BYTE) * CODES_PER_BYTE
    # Padding columns get code 0 (stored as 1); unpacking drops them again.
    shifted = torch.ones(out_features, padded_in, dtype=torch.uint8, device=weight.device)
    shifted[:, :in_features] = (codes + 1).to(torch.uint8)
    groups = shifted.view(out_features, -1, CODES_PER_BYTE)
    packed = torch.zeros(out_features, groups.shape[1], dtype=torch.uint8, device=weight.device)
    for slot in range(CODES_PER_BYTE):
        packed |= groups[:, :, slot] << (2 * slot)
    return packed, scale


def unpack_ternary_codes(packed: torch.Tensor, in_features: int, validate: bool = True) -> torch.Tensor:
    """The int8 codes in {-1, 0, 1} of shape ``[out, in_features]`` stored in ``packed``.

    ``validate`` checks for the invalid 2-bit value 3, which costs a device-to-host sync; code that
    unpacks the same, already checked buffer on every call (``PackedBitLinear.forward``) passes False."""
    if validate:
        check_packed_codes(packed)
    slots = [((packed >> (2 * slot)) & 0b11) for slot in range(CODES_PER_BYTE)]
    shifted = torch.stack(slots, dim=-1).reshape(packed.shape[0], -1)[:, :in_features]
    return shifted.to(torch.int8) - 1


def check_packed_codes(packed: torch.Tensor, where: str = "packed ternary tensor") -> None:
    """Raise unless every 2-bit field of ``packed`` holds a code of {0, 1, 2} (i.e. -1, 0, 1)."""
    invalid = torch.zeros_like(packed, dtype=torch.bool)
    for slot in range(CODES_PER_BYTE):
        invalid |= ((packed >> (2 * slot)) & 0b11) == 0b11
    if bool(invalid.any()):
        raise ValueError(f"{where} holds the invalid 2-bit value 3")


def unpack_ternary(packed: torch.Tensor, scale: torch.Tensor, in_features: int,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Dequantised ternary weight ``codes * scale`` of shape ``[out, in_features]``."""
    return (unpack_ternary_codes(packed, in_features).float() * scale.float()).to(dtype)


class BitLinear(nn.Linear):
    """Training-time BitLinear (fake quantisation with straight-through estimators).

    Subclasses ``nn.Linear`` so that parameter names (``weight``, ``bias``) and initialisation follow
    upstream; adds ``norm`` (RMSNorm over the input features, eps 1e-8).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.norm = RMSNorm(in_features, eps=BITLINEAR_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low_precision = autocast_dtype(x)
        if low_precision is not None:
            return _AutocastBitLinear.apply(x, self.norm.weight, self.weight, self.bias, self.norm.eps, low_precision)
        x_hat = self.norm(x)
        x_q = x_hat + (activation_quant(x_hat) - x_hat).detach()
        w_q = self.weight + (weight_quant(self.weight) - self.weight).detach()
        return F.linear(x_q, w_q.to(x_q.dtype), None if self.bias is None else self.bias.to(x_q.dtype))


def autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The low-precision dtype autocast runs matmuls in on ``x``'s device, or None outside autocast."""
    device_type = x.device.type
    if device_type not in ("cpu", "cuda") or not torch.is_autocast_enabled(device_type):
        return None
    dtype = torch.get_autocast_dtype(device_type)
    return dtype if dtype in (torch.bfloat16, torch.float16) else None


def wide_float(t: torch.Tensor) -> torch.Tensor:
    """``t`` in fp32, or as it is when already fp32/fp64 (the exactness tests run in fp64)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _quantised_input(x32: torch.Tensor, rstd: torch.Tensor, norm_weight: torch.Tensor, dtype: torch.dtype):
    """(RMSNorm(x) before and after 8-bit fake quantisation in ``dtype``); the norm computed in fp32."""
    normed = x32 * rstd
    x_hat = normed * wide_float(norm_weight)
    codes, scale = activation_codes(x_hat)
    return normed, (codes / scale).to(dtype)


class _AutocastBitLinear(torch.autograd.Function):
    """BitLinear under autocast, keeping for backward only what cannot be recomputed cheaply.

    The plain form's autograd graph keeps, per layer, the fp32 normalised input, the fp32 product with
    the norm gain and the low-precision quantised input and weight (with fp32 weights under bf16 autocast
    that is about 14 bytes per input element, more than the input itself). Here forward keeps the input
    as it came (usually already kept by the layer before) and the fp32 per-token RMS factor; backward
    recomputes the norm and both quantisations (elementwise work, small next to the matmuls). The values
    are those of the plain form under autocast: norm and scales in fp32, quantised activations and
    weights cast to the autocast dtype for the matmul, straight-through gradients for both.
    """

    @staticmethod
    def forward(ctx, x, norm_weight, weight, bias, eps, dtype):
        with torch.autocast(x.device.type, enabled=False):
            x32 = wide_float(x)
            rstd = torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
            _, x_q = _quantised_input(x32, rstd, norm_weight, dtype)
            w_q = weight_quant(weight).to(dtype)
            y = F.linear(x_q, w_q, None if bias is None else bias.to(dtype))
        ctx.save_for_backward(x, rstd, norm_weight, weight)
        ctx.dtype, ctx.has_bias = dtype, bias is not None
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x, rstd, norm_weight, weight = ctx.saved_tensors
        dtype = ctx.dtype
        dy = dy.to(dtype)
        normed, x_q = _quantised_input(wide_float(x), rstd, norm_weight, dtype)
        dweight = dbias = dx = dnorm_weight = None
        if ctx.needs_input_grad[2]:  # STE: the gradient of W_q goes to W
            dweight = (dy.flatten(0, -2).t() @ x_q.flatten(0, -2)).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            dbias = wide_float(dy.flatten(0, -2).sum(0))
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            # STE: the gradient of x_q goes to x_hat = normed * gain; then RMSNorm's backward in fp32
            dx_hat = wide_float(dy @ weight_quant(weight).to(dtype))
            if ctx.needs_input_grad[1]:
                dnorm_weight = (dx_hat * normed).flatten(0, -2).sum(0).to(norm_weight.dtype)
            if ctx.needs_input_grad[0]:
                dnormed = dx_hat * wide_float(norm_weight)
                dx = (rstd * (dnormed - normed * (dnormed * normed).mean(-1, keepdim=True))).to(x.dtype)
        return dx, dnorm_weight, dweight, dbias, None, None


class PackedBitLinear(nn.Module):
    """Inference-only BitLinear holding 2-bit packed ternary weights (buffers, no weight gradient)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        bytes_per_row = -(-in_features // CODES_PER_BYTE)
        self.register_buffer("packed_weight", torch.ones(out_features, bytes_per_row, dtype=torch.uint8) * 0b01010101)
        self.register_buffer("weight_scale", torch.ones((), dtype=torch.float32))
        self.norm = RMSNorm(in_features, eps=BITLINEAR_NORM_EPS)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    @classmethod
    def from_bitlinear(cls, module: BitLinear) -> "PackedBitLinear":
        packed_module = cls(module.in_features, module.out_features, bias=module.bias is not None)
        packed, scale = pack_ternary(module.weight.detach())
        packed_module.packed_weight = packed
        packed_module.weight_scale = scale.detach().clone()
        packed_module.norm.eps = module.norm.eps
        with torch.no_grad():
            packed_module.norm.weight.copy_(module.norm.weight)
            if module.bias is not None:
                packed_module.bias.copy_(module.bias)
        return packed_module.to(module.weight.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Loaded codes are checked once here, so that forward never has to (a check there would make
        # every forward wait for the device).
        packed = state_dict.get(prefix + "packed_weight")
        if isinstance(packed, torch.Tensor):
            check_packed_codes(packed, where=f"state dict entry {prefix}packed_weight")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_codes, x_scale = activation_codes(self.norm(x))
        # packed_weight comes from pack_ternary or a checked state dict: unpacked without a host sync
        w_codes = unpack_ternary_codes(self.packed_weight, self.in_features, validate=False).float()
        # Integer-valued product, rescaled once per token: y = (x_int @ c^T) * m / s_x.
        y = F.linear(x_codes, w_codes) * (self.weight_scale / x_scale)
        if self.bias is not None:
            y = y + self.bias.float()
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def pack_bitlinears(module: nn.Module) -> nn.Module:
    """Replace, in place, every ``BitLinear`` inside ``module`` by its ``PackedBitLinear`` (for inference)."""
    for name, child in list(module.named_children()):
        if isinstance(child, BitLinear):
            setattr(module, name, PackedBitLinear.from_bitlinear(child))
        else:
            pack_bitlinears(child)
    return module


__all__ = [
    "BitLinear", "PackedBitLinear", "pack_bitlinears", "pack_ternary", "unpack_ternary", "unpack_ternary_codes",
    "check_packed_codes",
    "activation_quant", "weight_quant", "ternary_codes", "activation_codes", "autocast_dtype", "wide_float",
]
