"""MatMul-free LM (HGRN-bit) in pure PyTorch, as ridgerchu/matmulfreellm (``mmfreelm``), same parameter names.

Block (pre-norm): ``r = h + attn(attn_norm(h)); h = r + mlp(mlp_norm(r))``.

MLGRU token mixer (``HGRNBitAttention``), per channel:
``f = sigmoid(f_proj(x))`` raised by the layer's lower bound (layers > 0) to ``lb + (1 - lb) f``;
``i = silu(i_proj(x)) * (1 - f)``; ``h_t = f_t h_{t-1} + i_t`` (kernels.ops.hgrn with ``g = log f``);
``o = o_proj(RMSNorm(g_proj(x)) * swish(h))`` -- upstream normalises the gate projection and swishes the
recurrent output (the reverse of fla's HGRN). Lower bounds: ``softmax(lower_bounds, layers)``, cumulative
sum over layers, minus row 0. GLU channel mixer: ``gate_proj`` (d -> 2I) split into [gate, y],
``down_proj(silu(gate) * y)``. Every projection is a ternary ``BitLinear`` (kernels.ops.bitlinear).

Padding (right padding): upstream zeroes ``i`` at padded positions; here ``g`` is zeroed there as well, so
padding leaves the state exactly as after each row's last real token (outputs at real positions are the same).

Heads: the recurrence is elementwise, so ``num_heads`` only matters for checkpoint compatibility.
The decode state (``past_state``) is a list with one fp32 ``[batch, hidden]`` tensor per layer.

Design decision for classification: ``HGRNBitForCausalLM.lm_head`` is a BitLinear as upstream (so its
``lm_head.weight`` / ``lm_head.norm.weight`` load), but ``HGRNBitForSequenceClassification.score`` is a plain
full-precision ``nn.Linear`` like the other families' heads: a ternary head with 2-3 outputs would have
almost no capacity, and the head is not part of the pretrained model anyway.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from kernels.models.arch_rules import raise_structural_errors
from kernels.models.common import (BackboneMixin, CausalLMMixin, FamilyPreTrainedModel,
                                   SequenceClassifierMixin, mark_residual_output, padding_keep_mask)
from kernels.models.hgrn_bit.configuration_hgrn_bit import HGRNBitConfig
from kernels.modules import RMSNorm, intermediate_size_for
from kernels.ops.bitlinear import BitLinear, autocast_dtype, wide_float
from kernels.ops.hgrn import chunk_hgrn, fused_recurrent_hgrn

# The layer's own initialisation in mmfreelm (xavier_uniform with this gain for its projections).
ATTENTION_INIT_GAIN = 2 ** -2.5


def _check_supported(config: HGRNBitConfig) -> None:
    if config.use_short_conv:
        raise NotImplementedError("HGRNBitConfig.use_short_conv=True is not implemented here")
    raise_structural_errors("mmfree", config)
    if config.hidden_act not in ("swish", "silu"):
        raise NotImplementedError(f"HGRNBitConfig.hidden_act={config.hidden_act!r}: only 'swish' (as upstream)")


class HGRNBitAttention(nn.Module):
    def __init__(self, config: HGRNBitConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.input_dim = int(config.hidden_size * (config.expand_ratio or 1))
        d = config.hidden_size
        self.i_proj = BitLinear(d, self.input_dim, bias=False)
        self.f_proj = BitLinear(d, self.input_dim, bias=False)
        self.g_proj = BitLinear(d, self.input_dim, bias=False)
        self.g_norm = RMSNorm(self.input_dim, eps=config.rms_norm_eps)
        self.o_proj = BitLinear(self.input_dim, d, bias=False)
        # mmfreelm's layer initialises its own projections with xavier_uniform (gain 2^-2.5), not N(0, 0.02).
        for proj in (self.i_proj, self.f_proj, self.g_proj, self.o_proj):
            proj._xavier_init_gain = ATTENTION_INIT_GAIN

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                past: torch.Tensor | None = None, use_cache: bool = False,
                lower_bound: torch.Tensor | None = None):
        bound = lower_bound if self.layer_idx > 0 else None
        f_logits = self.f_proj(x)
        i_logits = self.i_proj(x)
        if autocast_dtype(x) is not None:
            # mixed precision: the gates' fp32 intermediates are recomputed in backward, not kept
            keep = padding_keep_mask(attention_mask, x.new_empty((), dtype=torch.float32))
            inputs, log_forget = _MLGRUGates.apply(i_logits, f_logits, bound, keep)
        else:
            inputs, log_forget = mlgru_gates(i_logits, f_logits, bound, attention_mask)
        # Single decode steps use the step kernel; sequences the chunked scan (same math).
        kernel = fused_recurrent_hgrn if x.shape[1] == 1 else chunk_hgrn
        h, state = kernel(inputs, log_forget, initial_state=past, output_final_state=use_cache)
        gate = self.g_norm(self.g_proj(x))
        # in the gate's dtype (the autocast dtype in mixed precision): o_proj quantises o to 8 bits anyway
        o = gate * F.silu(h.to(gate.dtype))
        return self.o_proj(o), state


def mlgru_gates(i_logits: torch.Tensor, f_logits: torch.Tensor, lower_bound: torch.Tensor | None,
                attention_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The recurrence's inputs ``silu(i) (1 - f)`` and log forget gate ``log f`` in fp32, zero at padding."""
    inputs, log_forget = _gates_fp32(i_logits, f_logits, lower_bound)
    keep = padding_keep_mask(attention_mask, inputs)
    if keep is not None:
        inputs, log_forget = inputs * keep, log_forget * keep
    return inputs, log_forget


class _MLGRUGates(torch.autograd.Function):
    """``mlgru_gates`` keeping only its low-precision logits for backward (autocast training).

    Autograd through ``mlgru_gates`` keeps about eight fp32 tensors of the layer's width per token
    (upcast logits, sigmoid, forget gate, silu input and output, 1 - f, the pre-mask products); this
    keeps the two bf16 projections and recomputes the gates in fp32 in backward, with the same formulas.
    """

    @staticmethod
    def forward(ctx, i_logits, f_logits, lower_bound, keep):
        with torch.autocast(i_logits.device.type, enabled=False):
            inputs, log_forget = _gates_fp32(i_logits, f_logits, lower_bound)
            if keep is not None:
                inputs, log_forget = inputs * keep, log_forget * keep
        ctx.save_for_backward(i_logits, f_logits, lower_bound, keep)
        return inputs, log_forget

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_inputs, d_log_forget):
        i_logits, f_logits, lower_bound, keep = ctx.saved_tensors
        i32, f32 = wide_float(i_logits), wide_float(f_logits)
        d_inputs = torch.zeros_like(i32) if d_inputs is None else wide_float(d_inputs)
        d_log_forget = torch.zeros_like(f32) if d_log_forget is None else wide_float(d_log_forget)
        if keep is not None:
            d_inputs, d_log_forget = d_inputs * keep, d_log_forget * keep
        sig_f, sig_i = torch.sigmoid(f32), torch.sigmoid(i32)
        silu_i = i32 * sig_i
        if lower_bound is not None:
            bound = wide_float(lower_bound)
            forget = bound + (1 - bound) * sig_f
            d_forget = d_log_forget / forget - d_inputs * silu_i
            d_f = d_forget * (1 - bound) * sig_f * (1 - sig_f)
            d_bound = (d_forget * (1 - sig_f)).reshape(-1, bound.shape[-1]).sum(0).reshape(bound.shape)
            d_bound = d_bound.to(lower_bound.dtype)
        else:
            forget = sig_f
            d_f = d_log_forget * (1 - sig_f) - d_inputs * silu_i * sig_f * (1 - sig_f)
            d_bound = None
        d_i = d_inputs * (1 - forget) * sig_i * (1 + i32 * (1 - sig_i))
        return d_i.to(i_logits.dtype), d_f.to(f_logits.dtype), d_bound, None


def _gates_fp32(i_logits, f_logits, lower_bound):
    """``f = sigmoid(f_logits)`` raised by the lower bound, ``(silu(i) (1 - f), log f)`` in fp32."""
    f32 = wide_float(f_logits)
    if lower_bound is not None:
        forget = wide_float(lower_bound) + (1 - wide_float(lower_bound)) * torch.sigmoid(f32)
        log_forget = torch.log(forget)
    else:
        forget = torch.sigmoid(f32)
        log_forget = F.logsigmoid(f32)  # exact log f without log(0) for very negative logits
    return F.silu(wide_float(i_logits)) * (1 - forget), log_forget


class HGRNBitMLP(nn.Module):
    def __init__(self, config: HGRNBitConfig):
        super().__init__()
        width = config.intermediate_size or intermediate_size_for(config.hidden_size, config.hidden_ratio or 4)
        self.intermediate_size = width
        self.gate_proj = BitLinear(config.hidden_size, 2 * width, bias=False)
        self.down_proj = mark_residual_output(BitLinear(width, config.hidden_size, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, y = self.gate_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * y)


class HGRNBitBlock(GradientCheckpointingLayer):  # recomputed in backward when checkpointing is on
    def __init__(self, config: HGRNBitConfig, layer_idx: int):
        super().__init__()
        self.attn_norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.attn = HGRNBitAttention(config, layer_idx)
        self.mlp_norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = HGRNBitMLP(config)

    def forward(self, hidden, attention_mask=None, past=None, use_cache=False, lower_bound=None):
        attn_out, state = self.attn(self.attn_norm(hidden), attention_mask, past, use_cache, lower_bound)
        residual = hidden + attn_out
        return residual + self.mlp(self.mlp_norm(residual)), state


class HGRNBitPreTrainedModel(FamilyPreTrainedModel):
    config_class = HGRNBitConfig
    config: HGRNBitConfig
    _no_split_modules = ["HGRNBitBlock"]


class HGRNBitModel(BackboneMixin, HGRNBitPreTrainedModel):
    """Backbone: ``embeddings`` -> blocks (with per-layer forget-gate lower bounds) -> ``norm``
    (forward in ``BackboneMixin``)."""

    def __init__(self, config: HGRNBitConfig):
        super().__init__(config)
        _check_supported(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        if config.use_lower_bound:
            self.lower_bounds = nn.Parameter(torch.zeros(config.num_hidden_layers, config.hidden_size))
        self.layers = nn.ModuleList(HGRNBitBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_init()

    def reset_family_parameters(self, init) -> None:
        if self.config.use_lower_bound:
            init.zeros_(self.lower_bounds)

    def layer_lower_bounds(self) -> torch.Tensor | None:
        """[layers, hidden]: softmax over layers, cumulative sum, minus the first row (layer 0 gets 0)."""
        if not self.config.use_lower_bound:
            return None
        weights = self.lower_bounds.float().softmax(dim=0)
        bounds = weights.cumsum(dim=0)
        return bounds - bounds[0]

    def per_layer_inputs(self) -> torch.Tensor | None:
        """Each block gets its row of the lower bounds as ``lower_bound``."""
        return self.layer_lower_bounds()


class HGRNBitForCausalLM(CausalLMMixin, HGRNBitPreTrainedModel):
    """As upstream, the LM head is itself a BitLinear (``lm_head.weight``, ``lm_head.norm.weight``)."""

    def __init__(self, config: HGRNBitConfig):
        super().__init__(config)
        self.model = HGRNBitModel(config)
        self.lm_head = BitLinear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()


class HGRNBitForSequenceClassification(SequenceClassifierMixin, HGRNBitPreTrainedModel):
    """Backbone ``model`` + new full-precision ``score`` head on the last non-padding token."""

    def __init__(self, config: HGRNBitConfig):
        super().__init__(config)
        self._init_classifier(HGRNBitModel(config), config)
        self.post_init()
