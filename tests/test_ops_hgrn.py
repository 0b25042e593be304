"""HGRN kernels: chunked scan vs step-by-step vs plainest loop vs one-token decode steps."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from kernels.ops import backend
from kernels.ops.hgrn import chunk_hgrn, fused_recurrent_hgrn, naive_recurrent_hgrn
from kernels.ops.hgrn.chunk import chunk_hgrn_torch, default_chunk_size, scan

B, D = 2, 12
ODD_LENGTHS = [1, 7, 63, 65, 130]


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_inputs(T, gates="normal", dtype=torch.float32, seed=0, with_state=False, b=B, d=D):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, T, d, generator=gen, dtype=dtype)
    logits = torch.randn(b, T, d, generator=gen, dtype=dtype)
    if gates == "normal":
        g = F.logsigmoid(logits)
    elif gates == "weak":  # forget gates near 1: long memory, the case where errors would accumulate
        g = F.logsigmoid(logits + 6)
    elif gates == "very_strong":
        g = -20 * torch.rand(b, T, d, generator=gen, dtype=dtype) - 1e-3
    elif gates == "extreme":  # exp(g) underflows to exactly 0 in fp32
        g = torch.full((b, T, d), -200.0, dtype=dtype)
    else:
        raise ValueError(gates)
    h0 = torch.randn(b, d, generator=gen, dtype=dtype) if with_state else None
    return x, g, h0


def assert_close(actual, expected, tol):
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol)


@pytest.mark.parametrize("T", ODD_LENGTHS + [600])
@pytest.mark.parametrize("with_state", [False, True])
def test_chunk_recurrent_naive_agree(T, with_state):
    x, g, h0 = make_inputs(T, with_state=with_state, seed=T)
    o_naive, s_naive = naive_recurrent_hgrn(x, g, initial_state=h0, output_final_state=True)
    o_rec, s_rec = fused_recurrent_hgrn(x, g, initial_state=h0, output_final_state=True)
    o_chunk, s_chunk = chunk_hgrn(x, g, initial_state=h0, output_final_state=True)
    assert o_chunk.shape == (B, T, D) and s_chunk.shape == (B, D)
    assert_close(o_rec, o_naive, 1e-4)
    assert_close(o_chunk, o_naive, 1e-4)
    assert_close(s_rec, s_naive, 1e-4)
    assert_close(s_chunk, s_naive, 1e-4)


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 64])
def test_any_chunk_size_is_exact(chunk_size):
    x, g, h0 = make_inputs(100, gates="weak", with_state=True, seed=1)
    o_rec, s_rec = fused_recurrent_hgrn(x, g, initial_state=h0, output_final_state=True)
    o, s = chunk_hgrn_torch(x, g, h0, True, chunk_size=chunk_size)
    assert_close(o, o_rec, 1e-4)
    assert_close(s, s_rec, 1e-4)


@pytest.mark.parametrize("T, chunk_size", [(1, 8), (37, 8), (64, 16), (100, 32)])
def test_reverse_scan_is_the_forward_scan_of_flipped_time(T, chunk_size):
    """The backward pass's reverse scan (padding at the end, processed first) against flipped inputs."""
    x, g, h0 = make_inputs(T, gates="weak", with_state=True, seed=T)
    decay = g.exp()
    h_rev, last_rev = scan(x, decay, h0, chunk_size, reverse=True)
    h_fwd, last_fwd = scan(x.flip(1), decay.flip(1), h0, chunk_size)
    assert_close(h_rev, h_fwd.flip(1), 1e-5)
    assert_close(last_rev, last_fwd, 1e-5)


def test_default_chunk_size_balances_the_two_loops():
    assert default_chunk_size(1) == 8
    assert default_chunk_size(1024) == 32
    assert default_chunk_size(10**6) == 64


@pytest.mark.parametrize("gates", ["weak", "very_strong", "extreme"])
def test_strong_and_weak_gates_exact_and_finite(gates):
    x, g, h0 = make_inputs(257, gates=gates, with_state=True, seed=2)
    o_rec, s_rec = fused_recurrent_hgrn(x, g, initial_state=h0, output_final_state=True)
    o_chunk, s_chunk = chunk_hgrn(x, g, initial_state=h0, output_final_state=True)
    assert torch.isfinite(o_chunk).all() and torch.isfinite(s_chunk).all()
    assert_close(o_chunk, o_rec, 1e-4)
    assert_close(s_chunk, s_rec, 1e-4)
    if gates == "extreme":  # nothing is remembered: h_t = x_t
        assert_close(o_chunk, x, 0)


@pytest.mark.parametrize("T", [7, 65])
def test_decode_steps_carry_the_state(T):
    x, g, h0 = make_inputs(T, with_state=True, seed=5)
    o_full, s_full = chunk_hgrn(x, g, initial_state=h0, output_final_state=True)
    state, steps = h0, []
    for t in range(T):
        o_t, state = fused_recurrent_hgrn(x[:, t : t + 1], g[:, t : t + 1], initial_state=state, output_final_state=True)
        steps.append(o_t)
    assert_close(torch.cat(steps, dim=1), o_full, 1e-5)
    assert_close(state, s_full, 1e-5)


def _grads(fn, inputs, with_final_state):
    leaves = [t.clone().requires_grad_() for t in inputs]
    x, g, h0 = leaves
    o, s = fn(x, g, initial_state=h0, output_final_state=True)
    weights = torch.linspace(-1, 1, o.numel(), dtype=o.dtype).reshape(o.shape)
    loss = (o * weights).sum()
    if with_final_state:
        loss = loss + (s * s).sum()
    loss.backward()
    return [t.grad for t in leaves]


@pytest.mark.parametrize("gates", ["normal", "weak", "very_strong"])
@pytest.mark.parametrize("T", [7, 65, 130])
def test_gradients_match_naive_fp64(gates, T):
    inputs = make_inputs(T, gates=gates, dtype=torch.float64, with_state=True, seed=T)
    expected = _grads(naive_recurrent_hgrn, inputs, with_final_state=True)
    for fn in (chunk_hgrn, fused_recurrent_hgrn):
        actual = _grads(fn, inputs, with_final_state=True)
        for name, a, e in zip(["x", "g", "initial_state"], actual, expected):
            assert torch.isfinite(a).all(), name
            torch.testing.assert_close(a, e, atol=1e-10, rtol=1e-10, msg=lambda m, n=name: f"d{n}: {m}")


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("T", [0, 1, 10])
def test_hand_written_backward_passes_gradcheck(T, with_state):
    x, g, h0 = make_inputs(T, dtype=torch.float64, with_state=with_state, seed=T, d=3)
    leaves = [t.requires_grad_() for t in (x, g, h0) if t is not None]

    def run(*args):
        h0_ = args[2] if with_state else None
        o, s = chunk_hgrn_torch(args[0], args[1], h0_, True, chunk_size=4)
        return o, s

    assert torch.autograd.gradcheck(run, tuple(leaves))


def test_gradients_match_fp32():
    inputs = make_inputs(300, with_state=True, seed=8)
    expected = _grads(fused_recurrent_hgrn, inputs, with_final_state=False)
    actual = _grads(chunk_hgrn, inputs, with_final_state=False)
    for a, e in zip(actual, expected):
        assert_close(a, e, 1e-4)


def test_output_final_state_and_dtypes():
    x, g, _ = make_inputs(20)
    for fn in (chunk_hgrn, fused_recurrent_hgrn, naive_recurrent_hgrn):
        o, s = fn(x, g)
        assert s is None and o.dtype == torch.float32
        o16, s16 = fn(x.to(torch.bfloat16), g.to(torch.bfloat16), output_final_state=True)
        assert o16.dtype == torch.bfloat16  # output in x's dtype
        assert s16.dtype == torch.float32 and s16.shape == (B, D)  # state kept in fp32


def test_zero_length_sequence():
    x, g, h0 = make_inputs(0, with_state=True)
    for fn in (chunk_hgrn, fused_recurrent_hgrn, naive_recurrent_hgrn):
        o, s = fn(x, g, initial_state=h0, output_final_state=True)
        assert o.shape == (B, 0, D)
        assert_close(s, h0, 0)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: {**a, "x": a["x"][0]}, "`x` must be 3-D"),
        (lambda a: {**a, "g": a["g"][:, :-1]}, "same shape"),
        (lambda a: {**a, "x": a["x"].to(torch.int32)}, "`x` must be a floating tensor"),
        (lambda a: {**a, "initial_state": torch.zeros(B, D + 1)}, "`initial_state` must be [batch, dim]"),
    ],
)
@pytest.mark.parametrize("fn", [chunk_hgrn, fused_recurrent_hgrn, naive_recurrent_hgrn])
def test_bad_arguments_give_clear_errors(fn, mutate, message):
    x, g, _ = make_inputs(5)
    args = mutate({"x": x, "g": g, "initial_state": None})
    with pytest.raises((ValueError, TypeError)) as info:
        fn(**args)
    assert message in str(info.value)
    assert fn.__name__ in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("fla") is None, reason="fla is not installed")
def test_matches_fla_naive_reference():
    from fla.ops.hgrn.naive import naive_recurrent_hgrn as fla_naive

    x, g, h0 = make_inputs(65, with_state=True, seed=21)
    o_fla, s_fla = fla_naive(x, g, initial_state=h0, output_final_state=True)
    o, s = chunk_hgrn_torch(x, g, h0, True)
    assert_close(o, o_fla, 1e-4)
    assert_close(s, s_fla, 1e-4)


@pytest.mark.gpu
# the fla condition is a string, evaluated only when the CUDA one (checked first) does not skip: without
# CUDA, collecting the gpu tests never imports fla (the GPU check's CPU run stays short)
@pytest.mark.skipif("not backend.fla_available()", reason="needs fla (kernels.ops.backend.fla_import_error())")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("fn", [chunk_hgrn, fused_recurrent_hgrn])
def test_fla_path_matches_torch_path(fn):
    x, g, h0 = (t.cuda() for t in make_inputs(300, with_state=True, seed=4, d=256))
    assert backend.use_fla(x, g, h0)
    before = backend.fla_kernel_calls()
    o_fla, s_fla = fn(x, g, initial_state=h0, output_final_state=True)
    assert backend.fla_calls_since(before)[fn.__name__] == 1  # fla's kernel really ran
    backend.set_force_torch(True)
    try:
        o_torch, s_torch = fn(x, g, initial_state=h0, output_final_state=True)
    finally:
        backend.set_force_torch(None)
    assert_close(o_fla, o_torch, 1e-4)
    assert_close(s_fla, s_torch, 1e-4)


@pytest.mark.parametrize("reverse", [False, True])
def test_carry_is_itself_a_chunked_scan_for_many_chunks(reverse):
    """With more than SEQUENTIAL_CARRY_MAX chunks the carry across chunks recurses (three levels here:
    300 steps in chunks of 2 -> 150 chunks -> 10 chunks of 16); every state must still be exact."""
    from kernels.ops.hgrn.chunk import SEQUENTIAL_CARRY_MAX

    T, C = 300, 2
    assert T // C > SEQUENTIAL_CARRY_MAX
    x, g, h0 = make_inputs(T, gates="weak", dtype=torch.float64, with_state=True, seed=41)
    decay = g.exp()
    h, last = scan(x, decay, h0, C, reverse=reverse)
    order = range(T - 1, -1, -1) if reverse else range(T)
    state, expected = h0, torch.empty_like(x)
    for t in order:
        state = x[:, t] + decay[:, t] * state
        expected[:, t] = state
    assert_close(h, expected, 1e-12)
    assert_close(last, state, 1e-12)


def test_gradcheck_through_the_recursive_carry():
    x, g, h0 = make_inputs(70, dtype=torch.float64, with_state=True, seed=43, d=2)
    leaves = tuple(t.requires_grad_() for t in (x, g, h0))
    assert torch.autograd.gradcheck(lambda a, b, c: chunk_hgrn_torch(a, b, c, True, chunk_size=2), leaves)
