"""GLA kernels: chunked (two-level) vs step-by-step vs plainest loop vs one-token decode steps."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
import torch.nn.functional as F

from kernels.ops import backend
from kernels.ops.gla import chunk_gla, fused_recurrent_gla, naive_recurrent_gla
from kernels.ops.gla.chunk import DIAG_SAFE_LOG, chunk_gla_torch

B, H, K, V = 2, 3, 8, 6
ODD_LENGTHS = [1, 7, 63, 65, 130]


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_gates(shape, kind: str, generator, dtype):
    logits = torch.randn(shape, generator=generator, dtype=dtype)
    if kind == "normal":  # fla's layer: logsigmoid(logits) / 16
        return F.logsigmoid(logits) / 16
    if kind == "strong":  # without the /16 normaliser
        return F.logsigmoid(3 * logits)
    if kind == "very_strong":  # down to -20 per step: 16-step sums far beyond e^-88
        return -20 * torch.rand(shape, generator=generator, dtype=dtype)
    if kind == "mixed":  # mostly mild, with rare very strong steps (only some blocks need the exact path)
        spikes = torch.rand(shape, generator=generator, dtype=dtype) < 0.02
        return torch.where(spikes, torch.full_like(logits, -60.0), F.logsigmoid(logits) / 16)
    raise ValueError(kind)


def make_inputs(T, gates="normal", dtype=torch.float32, seed=0, with_state=False, b=B, h=H, k=K, v=V):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, T, h, k, generator=gen, dtype=dtype)
    kk = torch.randn(b, T, h, k, generator=gen, dtype=dtype)
    vv = torch.randn(b, T, h, v, generator=gen, dtype=dtype)
    g = make_gates((b, T, h, k), gates, gen, dtype)
    h0 = torch.randn(b, h, k, v, generator=gen, dtype=dtype) if with_state else None
    return q, kk, vv, g, h0


def assert_close(actual, expected, tol):
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol)


@pytest.mark.parametrize("T", ODD_LENGTHS)
@pytest.mark.parametrize("with_state", [False, True])
def test_chunk_recurrent_naive_agree(T, with_state):
    q, k, v, g, h0 = make_inputs(T, with_state=with_state, seed=T)
    o_naive, s_naive = naive_recurrent_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    o_rec, s_rec = fused_recurrent_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    o_chunk, s_chunk = chunk_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    assert o_chunk.shape == (B, T, H, V)
    assert s_chunk.shape == (B, H, K, V)
    assert_close(o_rec, o_naive, 1e-4)
    assert_close(o_chunk, o_naive, 1e-4)
    assert_close(s_rec, s_naive, 1e-4)
    assert_close(s_chunk, s_naive, 1e-4)


def test_long_sequence():
    q, k, v, g, h0 = make_inputs(600, with_state=True, seed=600, b=1, h=2, k=16, v=16)
    o_rec, s_rec = fused_recurrent_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    o_chunk, s_chunk = chunk_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    assert_close(o_chunk, o_rec, 1e-4)
    assert_close(s_chunk, s_rec, 1e-4)


@pytest.mark.parametrize("T", [7, 65])
def test_decode_steps_carry_the_state(T):
    """Calling the recurrent kernel with T = 1 repeatedly, passing the state on, equals one chunked call."""
    q, k, v, g, h0 = make_inputs(T, with_state=True, seed=11)
    o_full, s_full = chunk_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    state = h0
    steps = []
    for t in range(T):
        sl = slice(t, t + 1)
        o_t, state = fused_recurrent_gla(
            q[:, sl], k[:, sl], v[:, sl], g[:, sl], initial_state=state, output_final_state=True
        )
        assert o_t.shape == (B, 1, H, V)
        steps.append(o_t)
    assert_close(torch.cat(steps, dim=1), o_full, 1e-4)
    assert_close(state, s_full, 1e-4)


def test_prefill_then_continue_matches_one_pass():
    q, k, v, g, _ = make_inputs(150, seed=5)
    o_full, s_full = chunk_gla(q, k, v, g, output_final_state=True)
    o_a, s_a = chunk_gla(q[:, :70], k[:, :70], v[:, :70], g[:, :70], output_final_state=True)
    o_b, s_b = chunk_gla(q[:, 70:], k[:, 70:], v[:, 70:], g[:, 70:], initial_state=s_a, output_final_state=True)
    assert_close(torch.cat([o_a, o_b], dim=1), o_full, 1e-4)
    assert_close(s_b, s_full, 1e-4)


@pytest.mark.parametrize("gates", ["strong", "very_strong", "mixed"])
@pytest.mark.parametrize("T", [65, 200])
def test_strong_gates_stay_finite_and_exact(gates, T):
    q, k, v, g, h0 = make_inputs(T, gates=gates, with_state=True, seed=3)
    if gates == "very_strong":
        assert g.min() < -19  # the brief's "g down to -20"
    o_rec, s_rec = fused_recurrent_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    o_chunk, s_chunk = chunk_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    assert torch.isfinite(o_chunk).all() and torch.isfinite(s_chunk).all()
    assert_close(o_chunk, o_rec, 1e-4)
    assert_close(s_chunk, s_rec, 1e-4)


def test_strong_gates_take_the_exact_paths():
    """The fallbacks must actually trigger (otherwise the strong-gate tests prove nothing about them):
    strong gates make whole 64-step chunks unsafe (exact two-level path) and, with very strong ones,
    16-step sub-chunks too (masked differences); mild gates keep every chunk on the fast path."""
    _, _, _, g, _ = make_inputs(64, gates="very_strong")
    assert (g.reshape(B, 4, 16, H, K).sum(2) < -DIAG_SAFE_LOG).any()
    for gates in ("strong", "mixed"):
        _, _, _, g, _ = make_inputs(64, gates=gates, seed=3)
        assert (g.sum(1) < -DIAG_SAFE_LOG).any(), gates
    _, _, _, g_mild, _ = make_inputs(64, gates="normal")
    assert not (g_mild.sum(1) < -DIAG_SAFE_LOG).any()


@pytest.mark.parametrize("chunk_total", [-29.5, -30.5])
def test_gates_at_the_fast_path_threshold_stay_exact(chunk_total):
    """Chunks whose decay reaches just below / just beyond DIAG_SAFE_LOG: the factorised fast path
    at its largest factors (~e^29.5) and the exact path right after it, both against fp64."""
    T = 128
    q, k, v, g, h0 = make_inputs(T, with_state=True, seed=17)
    g = torch.full_like(g, chunk_total / 64)  # every 64-step chunk decays by chunk_total in all channels
    g[..., 0] = 0.0  # one channel without decay: large and small factors meet in one dot product
    chunk_sums = g.reshape(B, T // 64, 64, H, K).sum(2).amin(-1)
    assert bool((chunk_sums < -DIAG_SAFE_LOG).all()) == (chunk_total < -DIAG_SAFE_LOG)
    o_ref, s_ref = naive_recurrent_gla(
        *(t.double() for t in (q, k, v, g)), initial_state=h0.double(), output_final_state=True
    )
    o, s = chunk_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    assert_close(o.double(), o_ref, 1e-4)
    assert_close(s.double(), s_ref, 1e-4)


@pytest.mark.parametrize("chunk_size", [16, 32, 128])
def test_any_chunk_size_is_exact(chunk_size):
    q, k, v, g, h0 = make_inputs(200, gates="mixed", with_state=True, seed=23)
    o_rec, s_rec = fused_recurrent_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    o, s = chunk_gla_torch(q, k, v, g, K**-0.5, h0, True, chunk_size=chunk_size)
    assert_close(o, o_rec, 1e-4)
    assert_close(s, s_rec, 1e-4)


def _grads(fn, inputs, with_final_state):
    leaves = [t.clone().requires_grad_() for t in inputs]
    q, k, v, g, h0 = leaves
    o, s = fn(q, k, v, g, initial_state=h0, output_final_state=True)
    weights = torch.linspace(-1, 1, o.numel(), dtype=o.dtype).reshape(o.shape)
    loss = (o * weights).sum()
    if with_final_state:
        loss = loss + (s * s).sum()
    loss.backward()
    return [t.grad for t in leaves]


@pytest.mark.parametrize("gates", ["normal", "strong", "very_strong", "mixed"])
@pytest.mark.parametrize("T", [7, 65, 130])
def test_gradients_match_recurrent_fp64(gates, T):
    inputs = make_inputs(T, gates=gates, dtype=torch.float64, with_state=True, seed=T + 1)
    expected = _grads(naive_recurrent_gla, inputs, with_final_state=True)
    actual = _grads(chunk_gla, inputs, with_final_state=True)
    for name, a, e in zip(["q", "k", "v", "g", "initial_state"], actual, expected):
        assert torch.isfinite(a).all(), name
        torch.testing.assert_close(a, e, atol=1e-9, rtol=1e-9, msg=lambda m, n=name: f"d{n}: {m}")


def test_gradients_match_recurrent_fp32():
    inputs = make_inputs(130, gates="strong", with_state=True, seed=9)
    expected = _grads(fused_recurrent_gla, inputs, with_final_state=False)
    actual = _grads(chunk_gla, inputs, with_final_state=False)
    for a, e in zip(actual, expected):
        assert torch.isfinite(a).all()
        assert_close(a, e, 2e-4)


def test_output_final_state_and_dtypes():
    q, k, v, g, _ = make_inputs(20)
    for fn in (chunk_gla, fused_recurrent_gla, naive_recurrent_gla):
        o, s = fn(q, k, v, g)
        assert s is None
        assert o.dtype == torch.float32
    q16, k16, v16 = (t.to(torch.bfloat16) for t in (q, k, v))
    for fn in (chunk_gla, fused_recurrent_gla):
        o, s = fn(q16, k16, v16, g, output_final_state=True)
        assert o.dtype == torch.bfloat16  # output in v's dtype
        assert s.dtype == torch.float32  # state accumulated in fp32
        assert s.shape == (B, H, K, V)


def test_scale_defaults_to_inverse_sqrt_k():
    q, k, v, g, _ = make_inputs(30)
    o_default, _ = chunk_gla(q, k, v, g)
    o_explicit, _ = chunk_gla(q, k, v, g, scale=K**-0.5)
    o_double, _ = chunk_gla(q, k, v, g, scale=2 * K**-0.5)
    assert_close(o_default, o_explicit, 1e-6)
    assert_close(o_double, 2 * o_default, 1e-5)


def test_single_token_decode_is_cheap():
    """One decode step must not scale with anything but the state (no padding to a chunk)."""
    q, k, v, g, h0 = make_inputs(1, with_state=True)
    o, s = fused_recurrent_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    expected_state = g[:, 0].exp().unsqueeze(-1) * h0 + k[:, 0].unsqueeze(-1) * v[:, 0].unsqueeze(-2)
    assert_close(s, expected_state, 1e-6)
    expected_o = torch.einsum("bhk,bhkv->bhv", q[:, 0] * K**-0.5, expected_state)
    assert_close(o[:, 0], expected_o, 1e-5)


def test_zero_length_sequence():
    q, k, v, g, h0 = make_inputs(0, with_state=True)
    for fn in (chunk_gla, fused_recurrent_gla, naive_recurrent_gla):
        o, s = fn(q, k, v, g, initial_state=h0, output_final_state=True)
        assert o.shape == (B, 0, H, V)
        assert_close(s, h0, 0)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: {**a, "q": a["q"][0]}, "`q` must be 4-D"),
        (lambda a: {**a, "k": a["k"][:, :, :, :-1]}, "same shape"),
        (lambda a: {**a, "v": a["v"][:, :-1]}, "`v` must be [batch, time, heads, V]"),
        (lambda a: {**a, "g": a["g"].to(torch.int64)}, "`g` must be a floating tensor"),
        (lambda a: {**a, "initial_state": torch.zeros(B, H, V, K + 1)}, "`initial_state` must be [batch, heads, K, V]"),
        (lambda a: {**a, "scale": "0.5"}, "`scale` must be a number"),
    ],
)
@pytest.mark.parametrize("fn", [chunk_gla, fused_recurrent_gla, naive_recurrent_gla])
def test_bad_arguments_give_clear_errors(fn, mutate, message):
    q, k, v, g, _ = make_inputs(5)
    args = mutate({"q": q, "k": k, "v": v, "g": g, "scale": None, "initial_state": None})
    with pytest.raises((ValueError, TypeError)) as info:
        fn(**args)
    assert message in str(info.value)
    assert fn.__name__ in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("fla") is None, reason="fla is not installed")
def test_matches_fla_naive_reference():
    from fla.ops.gla.naive import naive_recurrent_gla as fla_naive

    q, k, v, g, h0 = make_inputs(65, with_state=True, seed=21)
    o_fla, s_fla = fla_naive(q, k, v, g, initial_state=h0, output_final_state=True)
    o, s = chunk_gla_torch(q, k, v, g, K**-0.5, h0, True)
    assert_close(o, o_fla, 1e-4)
    assert_close(s, s_fla, 1e-4)


@pytest.mark.gpu
# the fla condition is a string, evaluated only when the CUDA one (checked first) does not skip: without
# CUDA, collecting the gpu tests never imports fla (the GPU check's CPU run stays short)
@pytest.mark.skipif("not backend.fla_available()", reason="needs fla (kernels.ops.backend.fla_import_error())")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("fn", [chunk_gla, fused_recurrent_gla])
def test_fla_path_matches_torch_path(fn):
    q, k, v, g, h0 = (t.cuda() for t in make_inputs(300, gates="strong", with_state=True, seed=4, h=4, k=64, v=64))
    assert backend.use_fla(q, k, v, g, h0)
    before = backend.fla_kernel_calls()
    o_fla, s_fla = fn(q, k, v, g, initial_state=h0, output_final_state=True)
    assert backend.fla_calls_since(before)[fn.__name__] == 1  # fla's kernel really ran
    backend.set_force_torch(True)
    try:
        o_torch, s_torch = fn(q, k, v, g, initial_state=h0, output_final_state=True)
    finally:
        backend.set_force_torch(None)
    # fla's fp32 tl.dot runs at triton's default TF32 (10-bit mantissa) unless TRITON_F32_DEFAULT=ieee
    # (benchmarks/gpu_check.sh sets it for these tests): an emulation of fla's chunk algorithm on exactly
    # these inputs gives a largest error of 5.4e-3 with TF32 rounding to nearest, 1.1e-2 with truncation,
    # 1.9e-5 in IEEE fp32
    tol = 2e-3 if os.environ.get("TRITON_F32_DEFAULT") == "ieee" else 2e-2
    assert_close(o_fla, o_torch, tol)
    assert_close(s_fla, s_torch, tol)


@pytest.mark.parametrize("gates", ["normal", "mixed", "very_strong"])
def test_inference_path_equals_training_path(gates):
    """Without autograd the kernel writes into preallocated buffers (out=); with autograd it stacks
    per-head results. Both must give the same outputs and state, exact paths included."""
    q, k, v, g, h0 = make_inputs(200, gates=gates, with_state=True, seed=31)
    with torch.no_grad():
        o_inference, s_inference = chunk_gla_torch(q, k, v, g, K**-0.5, h0, True)
    leaves = [t.clone().requires_grad_() for t in (q, k, v, g, h0)]
    o_training, s_training = chunk_gla_torch(*leaves[:4], K**-0.5, leaves[4], True)
    assert o_training.requires_grad and s_training.requires_grad
    assert_close(o_inference, o_training.detach(), 1e-6)
    assert_close(s_inference, s_training.detach(), 1e-6)
    assert s_inference.is_contiguous() and s_training.is_contiguous()


def test_chunk_cumsum_gradient():
    """The in-chunk cumulative sum (a running sum with a hand-written backward) against gradcheck."""
    from kernels.ops.gla.chunk import _ChunkCumsum

    g = torch.randn(3, 5, 2, 4, dtype=torch.float64, requires_grad=True)
    out = _ChunkCumsum.apply(g, 1.5)
    assert_close(out, 1.5 * g.cumsum(1), 1e-12)
    assert torch.autograd.gradcheck(lambda x: _ChunkCumsum.apply(x, 1.5), (g,))


def test_short_sequences_use_one_short_chunk():
    from kernels.ops.gla.chunk import CHUNK_SIZE, SUB_CHUNK_SIZE, default_chunk_size

    assert [default_chunk_size(T) for T in (1, 16, 17, 24, 63)] == [16, 16, 32, 32, 64]
    assert default_chunk_size(10_000) == CHUNK_SIZE
    assert all(default_chunk_size(T) % SUB_CHUNK_SIZE == 0 for T in range(1, 200))
