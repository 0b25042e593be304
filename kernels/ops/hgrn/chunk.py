"""HGRN as a chunked scan: about 2C + 2 sqrt(T/C) sequential steps, each over many elements, not T.

h_t = exp(g_t) * h_{t-1} + x_t. Split time into N chunks of C steps.
1. Run the recurrence inside every chunk from a zero state, all chunks at once (C steps over
   [B, N, D]), keeping only each chunk's end state.
2. Carry across chunks: start_{n+1} = (product of chunk n's decays) * start_n + end_n, itself an
   HGRN recurrence over N steps (run step by step for few chunks, else by this same chunked scan).
3. Run the recurrence inside every chunk again, now from its true start state, writing every h.
Step 3 performs exactly the reference's update h_t = x_t + exp(g_t) h_{t-1}, so nothing is ever
factorised: no exponent is positive, nothing can overflow however strong the gates are. Padding the
tail with g = 0, x = 0 leaves the final state unchanged. The backward pass is the same scan run
backwards in time (see ``_ChunkScan``), so training costs two scans rather than a graph per step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..backend import count_fla_call, use_fla
from ..dtypes import compute_dtype
from ..fastmath import exp_base2
from .utils import check_hgrn_args


def chunk_hgrn(
    x: torch.Tensor,
    g: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Same contract as :func:`kernels.ops.hgrn.fused_recurrent_hgrn`, computed by a chunked scan.

    x, g: [B, T, D] (g = log forget gate, <= 0); state [B, D] fp32 (fp64 for fp64 inputs).
    On CUDA with fla importable (and not forced off) this calls ``fla.ops.hgrn.chunk_hgrn``; note that
    fla's kernel returns no gradient for ``initial_state`` and ignores gradients of the final state.
    """
    check_hgrn_args("chunk_hgrn", x, g, initial_state)
    if use_fla(x, g, initial_state):
        return _fla_chunk_hgrn(x, g, initial_state, output_final_state)
    return chunk_hgrn_torch(x, g, initial_state, output_final_state)


def default_chunk_size(T: int) -> int:
    """About sqrt(T), as a power of two in [8, 64]: balances the loops inside and across chunks."""
    if T <= 8:
        return 8
    return int(min(64, max(8, 2 ** round(math.log2(math.sqrt(T))))))


# Up to this many chunks the carry runs step by step; beyond, it is a chunked scan of its own.
SEQUENTIAL_CARRY_MAX = 16


def chunk_hgrn_torch(x, g, initial_state=None, output_final_state=False, chunk_size: int | None = None):
    B, T, D = x.shape
    dtype = compute_dtype(x, g, initial_state)
    C = chunk_size or default_chunk_size(T)
    h0 = None if initial_state is None else initial_state.to(dtype)
    h, final_state = _ChunkScan.apply(x.to(dtype), g.to(dtype), h0, C)
    return h.to(x.dtype), (final_state if output_final_state else None)


class _ChunkScan(torch.autograd.Function):
    """The scan with a hand-written backward, which is itself a chunked scan run backwards in time.

    With lam_t the total gradient reaching h_t (from o_t and, through h_{t+1}, from later steps):
        lam_t = do_t + exp(g_{t+1}) lam_{t+1},   lam_T = gradient of the final state
        dx_t = lam_t,  dg_t = lam_t exp(g_t) h_{t-1},  dh0 = exp(g_0) lam_0.
    Autograd through the loops would record ~2 graph nodes per step; this costs two scans.
    """

    @staticmethod
    def forward(ctx, x, g, h0, chunk_size):
        decay = exp_base2(g)
        h, h_last = scan(x, decay, h0, chunk_size)
        ctx.save_for_backward(decay, h, h0)
        ctx.chunk_size = chunk_size
        return h, h_last

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dh, dh_last):
        decay, h, h0 = ctx.saved_tensors
        B, T, D = decay.shape
        if T == 0:
            return torch.zeros_like(decay), torch.zeros_like(decay), dh_last if h0 is not None else None, None
        # backwards in time, step t receives lam_{t+1} decayed by exp(g_{t+1}); the final-state
        # gradient enters as the reverse scan's initial state (through decay 1 after step T-1)
        decay_next = F.pad(decay[:, 1:], (0, 0, 0, 1), value=1.0)
        lam, _ = scan(dh, decay_next, dh_last, ctx.chunk_size, reverse=True)
        dg = lam * decay
        dg[:, 1:] *= h[:, :-1]  # h_{t-1}
        if h0 is None:
            dg[:, 0] = 0.0
            dh0 = None
        else:
            dh0 = dg[:, 0].clone()  # lam_0 exp(g_0)
            dg[:, 0] *= h0
        return lam, dg, dh0, None


@torch.no_grad()
def scan(x: torch.Tensor, decay: torch.Tensor, h0: torch.Tensor | None, chunk_size: int, reverse: bool = False):
    """All states of h_t = x_t + decay_t h_{t-1} ([B, T, D]) and the last one ([B, D]; h0 when T = 0).

    ``reverse`` runs the recurrence from t = T-1 down to 0 (h_t = x_t + decay_t h_{t+1}), h0 entering
    after the end. Runs without autograd (the Function above supplies the gradient), so every step
    writes into one preallocated buffer: on CPU, fresh multi-megabyte tensors cost page faults that
    can exceed the arithmetic.
    """
    B, T, D = x.shape
    C = chunk_size
    N = max(1, math.ceil(T / C))
    pad = N * C - T
    if pad:  # padding with decay 1, x = 0 leaves every state, the last one included, unchanged
        x, decay = F.pad(x, (0, 0, 0, pad)), F.pad(decay, (0, 0, 0, pad), value=1.0)
    xs = x.reshape(B, N, C, D)  # [B, N, C, D]: chunk, then time in chunk
    decays = decay.reshape(B, N, C, D)
    chunk_decay = decays.prod(dim=2)  # [B, N, D], every factor <= 1
    local_last = _chunk_end_states(xs, decays, reverse)
    starts, h_last = _carry_across_chunks(local_last, chunk_decay, h0, reverse)
    h = _scan_from_starts(xs, decays, starts, reverse)
    return h.view(B, N * C, D)[:, :T], h_last


def _in_order(steps, reverse: bool):
    return steps[::-1] if reverse else steps


def _chunk_end_states(xs: torch.Tensor, decays: torch.Tensor, reverse: bool) -> torch.Tensor:
    """The state at the end of every chunk when it starts from zero, all chunks at once ([B, N, D])."""
    xs_steps, decay_steps = _in_order(xs.unbind(2), reverse), _in_order(decays.unbind(2), reverse)
    h = xs_steps[0].clone()
    for x_c, decay_c in zip(xs_steps[1:], decay_steps[1:]):
        torch.addcmul(x_c, decay_c, h, out=h)
    return h


def _carry_across_chunks(local_last, chunk_decay, h0, reverse):
    """State entering every chunk ([B, N, D]) and after the last one ([B, D]).

    start_{n+1} = chunk_decay_n * start_n + local_last_n is the same recurrence over N steps: for
    many chunks it is solved by the chunked scan too (a second level), which keeps the number of
    sequential steps near 2C + 2 sqrt(T / C) instead of 2C + T / C.
    """
    B, N, D = local_last.shape
    starts = torch.empty_like(local_last)
    first = N - 1 if reverse else 0
    if h0 is None:
        starts[:, first].zero_()
    else:
        starts[:, first].copy_(h0)
    if N > SEQUENTIAL_CARRY_MAX:
        states, h_last = scan(local_last, chunk_decay, h0, default_chunk_size(N), reverse)
        # the state entering chunk n is the state after the chunk before it (in scan order)
        if reverse:
            starts[:, :-1] = states[:, 1:]
        else:
            starts[:, 1:] = states[:, :-1]
        return starts, h_last
    steps = _in_order(tuple(zip(starts.unbind(1), local_last.unbind(1), chunk_decay.unbind(1))), reverse)
    for (start_n, last_n, decay_n), (next_start, _, _) in zip(steps[:-1], steps[1:]):
        torch.addcmul(last_n, decay_n, start_n, out=next_start)
    start_n, last_n, decay_n = steps[-1]
    return starts, torch.addcmul(last_n, decay_n, start_n)


def _scan_from_starts(xs: torch.Tensor, decays: torch.Tensor, starts: torch.Tensor, reverse: bool) -> torch.Tensor:
    """Every state, running the recurrence inside all chunks at once from their true start states.

    The same steps as the step-by-step loop (h_t = x_t + decay_t h_{t-1}), written in place.
    """
    h = torch.empty_like(xs)
    previous = starts
    steps = _in_order(tuple(zip(xs.unbind(2), decays.unbind(2), h.unbind(2))), reverse)
    for x_c, decay_c, h_c in steps:
        torch.addcmul(x_c, decay_c, previous, out=h_c)
        previous = h_c
    return h


def _fla_chunk_hgrn(x, g, initial_state, output_final_state):
    from fla.ops.hgrn import chunk_hgrn as fla_chunk_hgrn

    if initial_state is not None:
        initial_state = initial_state.float()
    o, final_state = fla_chunk_hgrn(x, g, initial_state=initial_state, output_final_state=output_final_state)
    count_fla_call("chunk_hgrn")
    if final_state is not None:
        final_state = final_state.float()
    return o, final_state
