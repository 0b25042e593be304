"""Comparisons of fla's kernels (reached through this package's adapters) with the pure-PyTorch ops.

Shared by the interpreter tests (``tests/test_ops_fla_interpreter.py``: CPU tensors, ``TRITON_INTERPRET=1``,
dispatch forced to fla by :func:`fla_interpreter.force_fla_dispatch`) and the ``gpu``-marked tests (CUDA
tensors, where the dispatch picks fla by itself). Each check prints ``ok ...`` lines and raises on the first
mismatch; the torch side runs the same call with ``kernels.ops.backend.set_force_torch(True)``.

Only torch and this package are imported at module level (the GPU check collects its tests with the node's
packages alone).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.ops import backend


def close(name, actual, expected, tol):
    torch.testing.assert_close(actual.float(), expected.float(), atol=tol, rtol=tol, msg=lambda m: f"{name}: {m}")


def close_scaled(name, actual, expected, tol, floor=1.0):
    """``close`` relative to the largest entry of ``expected`` (at least ``floor``): gradients of very
    different sizes, and bf16 results whose rounding grows with their magnitude."""
    scale = expected.detach().float().abs().max().clamp(min=floor)
    close(name, actual / scale, expected / scale, tol)


def on_torch_ops(fn, *args, **kwargs):
    backend.set_force_torch(True)
    try:
        return fn(*args, **kwargs)
    finally:
        backend.set_force_torch(None)


def calls_of(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and the calls of fla's kernels it made, per op (ops never called left out)."""
    before = backend.fla_kernel_calls()
    result = fn(*args, **kwargs)
    return result, {op: n for op, n in backend.fla_calls_since(before).items() if n}


# ----------------------------------------------------------------------------------------------- ops

def _gla_run(fn, leaves, weights):
    q, k, v, g, h0 = (t.detach().clone().requires_grad_() for t in leaves)
    o, s = fn(q, k, v, g, initial_state=h0, output_final_state=True)
    ((o.float() * weights[0]).sum() + (s * weights[1]).sum()).backward()
    return [o, s, q.grad, k.grad, v.grad, g.grad, h0.grad]


def _hgrn_run(fn, leaves, weights, state_grads):
    x, g, h0 = (t.detach().clone().requires_grad_() for t in leaves)
    o, s = fn(x, g, initial_state=h0, output_final_state=True)
    loss = (o.float() * weights[0]).sum()
    if state_grads:  # fla's chunk_hgrn ignores the final state's gradient and returns none for h0
        loss = loss + (s * weights[1]).sum()
    loss.backward()
    return [o, s, x.grad, g.grad] + ([h0.grad] if state_grads else [])


def compare_ops(device, cases, heads=2, key_dim=16, value_dim=8, hgrn_dim=32, seed=0) -> None:
    """The four ops, forward and backward (outputs, final states, every input gradient), on fla's kernels
    and on the torch ops. ``cases``: ``(dtype, tolerance, batch, length)``; states are fp32."""
    from kernels.ops.gla import chunk_gla, fused_recurrent_gla
    from kernels.ops.hgrn import chunk_hgrn, fused_recurrent_hgrn

    gen = torch.Generator().manual_seed(seed)
    H, K, V, D = heads, key_dim, value_dim, hgrn_dim

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    for dtype, tol, B, T in cases:
        q, k = (randn(B, T, H, K).to(device, dtype) for _ in range(2))
        v = randn(B, T, H, V).to(device, dtype)
        g = (F.logsigmoid(randn(B, T, H, K)) / 4).to(device, dtype)
        h0 = randn(B, H, K, V).to(device)  # fla asserts an fp32 state
        w = (randn(B, T, H, V).to(device), randn(B, H, K, V).to(device))
        for fn in (chunk_gla, fused_recurrent_gla):
            ours, calls = calls_of(_gla_run, fn, (q, k, v, g, h0), w)
            assert calls == {fn.__name__: 1}, calls
            expected, none = calls_of(on_torch_ops, _gla_run, fn, (q, k, v, g, h0), w)
            assert none == {}, none
            for index, (a, e) in enumerate(zip(ours, expected)):
                close_scaled(f"{fn.__name__} {dtype} T={T} output {index}", a, e, tol)
            print("ok", fn.__name__, str(dtype)[6:], T, flush=True)
        x = randn(B, T, D).to(device, dtype)
        gh = F.logsigmoid(randn(B, T, D)).to(device, dtype)
        s0 = randn(B, D).to(device)
        w = (randn(B, T, D).to(device), randn(B, D).to(device))
        for fn, state_grads in ((chunk_hgrn, False), (fused_recurrent_hgrn, True)):
            ours, calls = calls_of(_hgrn_run, fn, (x, gh, s0), w, state_grads)
            assert calls == {fn.__name__: 1}, calls
            expected = on_torch_ops(_hgrn_run, fn, (x, gh, s0), w, state_grads)
            for index, (a, e) in enumerate(zip(ours, expected)):
                close_scaled(f"{fn.__name__} {dtype} T={T} output {index}", a, e, tol)
            print("ok", fn.__name__, str(dtype)[6:], T, flush=True)


# ---------------------------------------------------------------------------------------- classifiers

TINY_ARCH = {"gla": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2},
             "mmfree": {"hidden_size": 32, "num_hidden_layers": 2}}
SEQUENCE_OP = {"gla": "chunk_gla", "mmfree": "chunk_hgrn"}
STEP_OP = {"gla": "fused_recurrent_gla", "mmfree": "fused_recurrent_hgrn"}
CLASSIFIER_CHECKS = ("logits and gradients", "checkpointing", "prefill and decode")


def compare_classifier(family: str, device, dtype: torch.dtype | None, tol: float,
                       checks: tuple[str, ...] = CLASSIFIER_CHECKS) -> None:
    """A tiny classifier of ``family`` on fla's kernels vs the torch ops: logits and every parameter
    gradient on a right-padded batch, activation checkpointing (same gradients, kernels called again in
    the recomputation), and a prefill followed by one decode step (the full forward's last position).
    ``dtype``: None (fp32) or the autocast dtype (e.g. bf16, as paper scale trains and evaluates);
    ``checks``: which of :data:`CLASSIFIER_CHECKS` to run (the first always runs)."""
    from kernels.models import classifier_class, config_class
    from kernels.models.common import set_activation_checkpointing

    device = torch.device(device)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 64, (2, 17), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # right padding, as the classifiers require
    ids, mask, labels = (ids * mask).to(device), mask.to(device), torch.tensor([0, 2], device=device)
    torch.manual_seed(0)
    model = classifier_class(family)(config_class(family)(vocab_size=64, pad_token_id=0, num_labels=3,
                                                          **TINY_ARCH[family])).to(device)
    layers, sequence_op, step_op = len(model.model.layers), SEQUENCE_OP[family], STEP_OP[family]
    label = f"{family} {'fp32' if dtype is None else str(dtype)[6:]}"

    def autocast():
        return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def loss_and_grads():
        model.zero_grad(set_to_none=True)
        with autocast():
            out = model(ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.train()
    (logits, grads), calls = calls_of(loss_and_grads)
    assert calls == {sequence_op: layers}, calls
    (logits_torch, grads_torch), none = calls_of(on_torch_ops, loss_and_grads)
    assert none == {}, none
    close_scaled(f"{label} logits", logits, logits_torch, tol)
    assert grads.keys() == grads_torch.keys()
    for name in grads:
        close_scaled(f"{label} grad {name}", grads[name], grads_torch[name], 5 * tol, floor=1e-3)
    print("ok", label, CLASSIFIER_CHECKS[0], flush=True)
    if CLASSIFIER_CHECKS[1] not in checks:
        return _decode_check(model, ids, autocast, label, layers, sequence_op, step_op, tol, checks)

    # checkpointing: the recomputed forward calls fla's kernels again; gradients as without it (the same
    # kernels on the same inputs: equal in the interpreter; on a GPU, atomic additions in backward kernels
    # may sum in another order, in bf16 as much as bf16's rounding)
    same = 1e-6 if device.type == "cpu" else tol
    set_activation_checkpointing(model, True)
    try:
        (logits_ckpt, grads_ckpt), calls = calls_of(loss_and_grads)
    finally:
        set_activation_checkpointing(model, False)
    assert calls == {sequence_op: 2 * layers}, calls  # forward + recomputation
    close_scaled(f"{label} logits checkpointed", logits_ckpt, logits, same)
    for name in grads:
        close_scaled(f"{label} grad checkpointed {name}", grads_ckpt[name], grads[name], 10 * same, floor=1e-3)
    print("ok", label, CLASSIFIER_CHECKS[1], flush=True)
    _decode_check(model, ids, autocast, label, layers, sequence_op, step_op, tol, checks)


def _decode_check(model, ids, autocast, label, layers, sequence_op, step_op, tol, checks) -> None:
    from kernels.models.common import decode_state_of

    if CLASSIFIER_CHECKS[2] not in checks:
        return
    # prefill on the chunked kernel, then one decode step on the recurrent one: the full forward
    model.eval()
    with torch.no_grad(), autocast():
        full = model.model(ids[:1])
        prefill, calls_prefill = calls_of(model.model, ids[:1, :-1], use_cache=True)
        step, calls_step = calls_of(model.model, ids[:1, -1:], past_state=decode_state_of(prefill), use_cache=True)
        full_torch = on_torch_ops(model.model, ids[:1])
    assert calls_prefill == {sequence_op: layers} and calls_step == {step_op: layers}, (calls_prefill, calls_step)
    last = step.last_hidden_state[:, -1]
    close_scaled(f"{label} decode step", last, full.last_hidden_state[:, -1], tol)
    close_scaled(f"{label} decode vs torch ops", last, full_torch.last_hidden_state[:, -1], tol)
    print("ok", label, CLASSIFIER_CHECKS[2], flush=True)
