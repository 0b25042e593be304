"""Analytic FLOPs per token, per family (the family registry, :mod:`kernels.families`, holds which formula a
family has; generic families have none, and the profiler counts their timed steps with
``torch.utils.flop_counter.FlopCounterMode``: every matmul, convolution and attention call that runs through
torch, none that a triton kernel runs).

Only matrix products are counted (2 FLOPs per multiply-accumulate), as in the usual ``6N`` rule;
norms, activations, softmax and the embedding lookup are left out. Each mode counts the head its timed step
runs: ``train`` and ``prefill`` the classification head (``2*d*num_labels``, once per token), ``decode`` the
language-model head every decoded token goes through (``2*d*vocab``, :func:`lm_head_flops_per_token`; see
kernels.profiling.measure) instead. Backward costs twice the forward, so a training token costs 3x forward.

Forward FLOPs of one token per layer (d = hidden size, I = MLP width, L = layers, c = number of
positions the token attends to):

- ``transformer_pp`` (Llama-style): q/o projections ``2*2*d*d``, k/v projections ``2*2*d*d_kv``
  (``d_kv`` = kv heads x head dim), attention scores and weighted sum ``2*2*d*c``, SwiGLU MLP
  ``3*2*d*I``. Attention grows with the context c.
- ``gla``: q/k ``2*2*d*d_k``, v/g ``2*2*d*d_v``, o ``2*d_v*d``, low-rank forget gate
  ``2*(d*r + r*d_k)`` (r = gate_low_rank_dim), recurrence per head (K x V state): decay-and-update
  ``2*K*V`` plus read-out ``2*K*V``, i.e. ``4*d_k*d_v/H`` over H heads; SwiGLU MLP ``3*2*d*I``.
  Independent of c.
- ``mmfree`` (HGRN-bit): i/f/g projections ``3*2*d*e`` and o ``2*e*d`` (e = d x expand_ratio),
  the element-wise recurrence is not a matrix product (not counted), GLU MLP ``2*d*2I + 2*I*d``.
  BitLinear weights are ternary, so these products are additions in principle; they are counted as
  dense-equivalent FLOPs so that the families compare on the same scale. Independent of c.

Context used per mode for a sequence of length n: ``prefill``/``train`` average over positions,
c = (n + 1) / 2 (causal); ``decode`` average over the generated tokens, c = n + (T + 1) / 2.

MFU (model FLOPs utilisation) of a measured point, as in the profiler's CSV columns::

    flops_per_token = F(mode)                  # forward_flops_per_token, times 3 for train
    achieved_gflops = flops_per_token * tokens_per_s / 1e9
    mfu             = achieved_gflops / peak_gflops

where ``tokens_per_s`` counts the tokens a timed sample processes (batch x seq_len for train and
prefill, batch per decoded step) over its median time, and ``peak_gflops`` is the dense matmul peak
measured on the same device, dtype and thread count just before the points
(:func:`kernels.profiling.peak.measure_matmul_peak_gflops`). Work left out of F (norms, activations,
the optimizer step, Python overhead) costs time but earns no FLOPs, so it lowers the MFU.
"""

from __future__ import annotations

from typing import Any, Callable

from kernels.modules import intermediate_size_for

def _get(config: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def _mlp_width(config: Any, hidden: int) -> int:
    width = _get(config, "intermediate_size")
    if width is None:
        width = intermediate_size_for(hidden, _get(config, "hidden_ratio", default=4))
    return int(width)


def _transformer_layer(config: Any, hidden: int, context: float) -> float:
    heads = int(_get(config, "num_attention_heads", "num_heads"))
    head_dim = int(_get(config, "head_dim", default=hidden // heads))
    kv_heads = int(_get(config, "num_key_value_heads", "num_kv_heads", default=heads))
    q_width, kv_width = heads * head_dim, kv_heads * head_dim
    projections = 2 * hidden * q_width * 2 + 2 * hidden * kv_width * 2
    attention = 2 * 2 * q_width * context
    return projections + attention + 3 * 2 * hidden * _mlp_width(config, hidden)


def _gla_layer(config: Any, hidden: int) -> float:
    heads = int(_get(config, "num_heads", "num_attention_heads"))
    key_width = int(hidden * _get(config, "expand_k", default=0.5))
    value_width = int(hidden * _get(config, "expand_v", default=1))
    rank = int(_get(config, "gate_low_rank_dim", default=16))
    projections = 2 * 2 * hidden * key_width + 2 * 2 * hidden * value_width + 2 * value_width * hidden
    gate = 2 * (hidden * rank + rank * key_width)
    recurrence = 4 * key_width * value_width / heads
    return projections + gate + recurrence + 3 * 2 * hidden * _mlp_width(config, hidden)


def _mmfree_layer(config: Any, hidden: int) -> float:
    inner = int(hidden * _get(config, "expand_ratio", default=1))
    width = _mlp_width(config, hidden)
    return 3 * 2 * hidden * inner + 2 * inner * hidden + 2 * hidden * 2 * width + 2 * width * hidden


def native_forward_flops(config: Any, per_layer: Callable[[int], float]) -> float:
    """Layers x ``per_layer(hidden size)`` plus the classification head (the native families' formulas)."""
    hidden = int(_get(config, "hidden_size"))
    layers = int(_get(config, "num_hidden_layers", "num_layers"))
    return layers * per_layer(hidden) + classifier_head_flops_per_token(config)


def classifier_head_flops_per_token(config: Any) -> float:
    """The classification head ``score`` (hidden -> num_labels), which train and prefill points run."""
    return 2 * int(_get(config, "hidden_size")) * int(_get(config, "num_labels", default=2))


def lm_head_flops_per_token(config: Any) -> float:
    """The language-model head (hidden -> vocabulary) every decoded token goes through in a decode point: the
    model's own ``lm_head`` or one of its shape (the family's ``decode_head``, see kernels.profiling.measure)."""
    return 2 * int(_get(config, "hidden_size")) * int(_get(config, "vocab_size"))


# The per-layer formulas of the native families (kernels.families.native picks one per family).
transformer_layer_flops, gla_layer_flops, mmfree_layer_flops = _transformer_layer, _gla_layer, _mmfree_layer


def forward_flops_per_token(family: str, config: Any, context: float) -> float | None:
    """Forward FLOPs of one token that attends to ``context`` positions (see module docstring), or None where
    the family has no formula (its FLOPs are then counted, see :mod:`kernels.profiling.measure`)."""
    from kernels.families import family as family_named

    return family_named(family).forward_flops_per_token(config, context)


def mode_context(mode: str, seq_len: int, decode_tokens: int) -> float:
    """Mean number of attended positions per token in ``mode`` (see module docstring)."""
    if mode in ("train", "prefill"):
        return (seq_len + 1) / 2
    if mode == "decode":
        return seq_len + (decode_tokens + 1) / 2
    raise ValueError(f"unknown profiling mode {mode!r}")


def flops_per_token(family: str, config: Any, mode: str, seq_len: int, decode_tokens: int) -> float | None:
    """FLOPs per processed token in ``mode``: forward only, or forward + backward (3x) for ``train``; a decoded
    token runs the language-model head, not the classification head (module docstring). None where the family
    has no formula."""
    forward = forward_flops_per_token(family, config, mode_context(mode, seq_len, decode_tokens))
    if forward is None:
        return None
    if mode == "decode":
        return forward - classifier_head_flops_per_token(config) + lm_head_flops_per_token(config)
    return 3 * forward if mode == "train" else forward
