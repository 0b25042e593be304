"""HGRN as a chunked scan: C + T/C sequential steps instead of T.

h_t = exp(g_t) * h_{t-1} + x_t. Split time into chunks of C steps.
1. Inside every chunk, run the recurrence from a zero state, all chunks at once (C steps).
2. Carry across chunks (T/C steps): start_{n+1} = exp(sum of g over chunk n) * start_n + local_n[last].
3. h = local + exp(cumsum of g inside the chunk) * start.
Every exponent is a sum of g <= 0, so nothing overflows however strong the gates are; padding the
tail with g = 0, x = 0 leaves the final state unchanged. The backward pass is the same scan run
backwards in time (see ``_ChunkScan``), so training costs two scans rather than a graph per step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..backend import use_fla
from .utils import check_hgrn_args, compute_dtype


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
    """About sqrt(T), as a power of two in [8, 64]: balances the two sequential loops (C and T/C)."""
    if T <= 8:
        return 8
    return int(min(64, max(8, 2 ** round(math.log2(math.sqrt(T))))))


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
        lam_t = do_t + exp(g_{t+1}) lam_{t+1}    (plus the final-state gradient at t = T-1)
        dx_t = lam_t,  dg_t = lam_t exp(g_t) h_{t-1},  dh0 = exp(g_0) lam_0.
    Autograd through the loops would record ~2 graph nodes per step; this costs two scans.
    """

    @staticmethod
    def forward(ctx, x, g, h0, chunk_size):
        h, h_last = scan(x, g, h0, chunk_size)
        ctx.save_for_backward(g, h, h0)
        ctx.chunk_size = chunk_size
        return h, h_last

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dh, dh_last):
        g, h, h0 = ctx.saved_tensors
        B, T, D = g.shape
        if T == 0:
            return torch.zeros_like(g), torch.zeros_like(g), dh_last if h0 is not None else None, None
        do = dh.clone()
        do[:, -1] += dh_last
        # reversed in time, step t receives lam_{t+1} decayed by exp(g_{t+1}); nothing after T-1
        g_next = F.pad(g[:, 1:], (0, 0, 0, 1))
        lam, _ = scan(do.flip(1), g_next.flip(1), None, ctx.chunk_size)
        lam = lam.flip(1)
        decay = g.exp()
        first = torch.zeros_like(h[:, :1]) if h0 is None else h0.unsqueeze(1)
        h_prev = torch.cat([first, h[:, :-1]], dim=1)
        dg = lam * decay * h_prev
        dh0 = None if h0 is None else lam[:, 0] * decay[:, 0]
        return lam, dg, dh0, None


@torch.no_grad()
def scan(x: torch.Tensor, g: torch.Tensor, h0: torch.Tensor | None, chunk_size: int):
    """All states h [B, T, D] and the last one [B, D] (h0 when T = 0), in x's dtype, by chunks."""
    B, T, D = x.shape
    C = chunk_size
    N = max(1, math.ceil(T / C))
    pad = N * C - T
    xs = F.pad(x, (0, 0, 0, pad)).view(B, N, C, D)  # [B, N, C, D]: chunk, then time in chunk
    gs = F.pad(g, (0, 0, 0, pad)).view(B, N, C, D)
    local = _scan_inside_chunks(xs, gs.exp())  # zero state at each chunk start
    # inclusive cumsum of g inside each chunk, as a product with a triangular matrix (torch.cumsum
    # along an inner dimension is several times slower on CPU); every entry is <= 0
    gcum = torch.ones(C, C, dtype=x.dtype, device=x.device).tril() @ gs
    starts, h_last = _carry_across_chunks(local[:, :, -1], gcum[:, :, -1].exp(), h0)
    h = torch.addcmul(local, gcum.exp(), starts.unsqueeze(2))
    return h.reshape(B, N * C, D)[:, :T], h_last


def _scan_inside_chunks(xs: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """Run the recurrence inside every chunk at once, from a zero state (C sequential steps)."""
    B, N, C, D = xs.shape
    h = xs.new_zeros(B, N, D)
    outputs = []
    for x_c, decay_c in zip(xs.unbind(2), decay.unbind(2)):
        h = torch.addcmul(x_c, decay_c, h)
        outputs.append(h)
    return torch.stack(outputs, dim=2)


def _carry_across_chunks(local_last, chunk_decay, h0):
    """State at the start of every chunk ([B, N, D]) and after the last one ([B, D])."""
    B, N, D = local_last.shape
    state = local_last.new_zeros(B, D) if h0 is None else h0
    starts = []
    for last_n, decay_n in zip(local_last.unbind(1), chunk_decay.unbind(1)):
        starts.append(state)
        state = torch.addcmul(last_n, decay_n, state)
    return torch.stack(starts, dim=1), state


def _fla_chunk_hgrn(x, g, initial_state, output_final_state):
    from fla.ops.hgrn import chunk_hgrn as fla_chunk_hgrn

    if initial_state is not None:
        initial_state = initial_state.float()
    o, final_state = fla_chunk_hgrn(x, g, initial_state=initial_state, output_final_state=output_final_state)
    if final_state is not None:
        final_state = final_state.float()
    return o, final_state
