"""GLA in chunked form, pure PyTorch: one level of chunks for speed, two levels where gates are strong.

Per head, with b_t the inclusive cumulative sum of g inside the chunk (b <= 0, decreasing) and S0
the state at the chunk start:

    o_t   = (s q_t * e^{b_t})^T S0 + sum_{j <= t in chunk} A[t, j] v_j
    A[t,j] = sum_k s q_{t,k} k_{j,k} e^{b_{t,k} - b_{j,k}}
    S_end = diag(e^{b_last}) S0 + sum_j (k_j * e^{b_last - b_j}) v_j^T

Fast path (every chunk whose total decay stays within ``DIAG_SAFE_LOG`` in all channels): A is one
matmul of q_t e^{b_t} with k_j e^{-b_j}. The query factor is <= 1 and also serves the state term;
the key factor is >= 1 but at most e^{DIAG_SAFE_LOG} (~1e13), far from the fp32 limit, so every
entry A[t, j], j <= t, is a sum of products each accurate to a few ulps. The key exponent is
clamped so that the (discarded) values of unsafe chunks stay finite: an inf there would turn
gradients into NaN even after being replaced.

Exact path (chunks with a stronger decay somewhere, rare with fla's gate normaliser): the
intra-chunk part is recomputed, for those chunks only, by the two-level form below, which is
exact for any gate strength. With sub-chunks of 16 and r_i the value of b just before query
sub-chunk i:

* off-diagonal sub-blocks (key j in a sub-chunk m < i): split around the boundary before the query
  sub-block, e^{b_t - r_i} * e^{r_i - b_j}; both factors are <= 1. The key factor is itself built
  as e^{r_i - r_{m+1}} * e^{r_{m+1} - b_j} (r_{m+1}: the boundary after sub-chunk m), so one
  per-sub-chunk key tensor serves every query sub-chunk.
* diagonal sub-blocks (key and query in the same 16 steps): the same split, whose key factor is
  >= 1 but bounded by the decay accumulated over those 16 steps. When that decay exceeds
  ``DIAG_SAFE_LOG`` in some channel the block is recomputed exactly with masked differences
  e^{b_t - b_j} (j <= t).

The cross-chunk terms (state read-out and state update) only use exponents <= 0 and are shared by
both paths. The sequence is padded to a multiple of the chunk size with g = 0, k = q = v = 0, which
changes neither the outputs nor the final state. Gradients come from autograd.

CPU cost: per token the fast path does C (K + V) multiply-adds inside its chunk and 2 K V for the
state (update and read-out), all as batched matmuls; the step-by-step loop does 3 K V, but as three
tiny ops per token. At K = V = C = 64 that is ~134 MFLOP for 4 heads x 1024 tokens: ~2 ms for these
matmuls alone on one core of the 2-core development machine (benchmarks/bench_kernels.py measures
this ceiling beside the kernel), the floor of this form whatever the Python around it. The rest is kept cheap: decays via exp2 on base-2 cumulative sums (exp costs several
times more), the in-chunk cumsum as C in-place adds, and, without autograd, results written into
preallocated head-major buffers instead of stacked copies.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..backend import count_fla_call, use_fla
from ..dtypes import autocast_off, compute_dtype
from ..fastmath import LOG2E
from .utils import check_gla_args, resolve_scale

CHUNK_SIZE = 64
SUB_CHUNK_SIZE = 16
# Largest log-factor allowed in a factorised block: e^30 ~ 1e13 keeps products of q, k and these
# factors far from the fp32 limit (~3e38), gradients included.
DIAG_SAFE_LOG = 30.0


def chunk_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gated linear attention, chunked. Same contract as :func:`fused_recurrent_gla`.

    q, k, g: [B, T, H, K] (g = log decay <= 0 per key channel); v: [B, T, H, V]; scale defaults to
    K**-0.5; initial_state / final state: [B, H, K, V] fp32 (fp64 for fp64 inputs). Returns
    (o [B, T, H, V] in v's dtype, final state if ``output_final_state`` else None).
    On CUDA with fla importable (and not forced off) this calls ``fla.ops.gla.chunk_gla``.
    """
    B, T, H, K, V = check_gla_args("chunk_gla", q, k, v, g, scale, initial_state)
    scale = resolve_scale(scale, K)
    if use_fla(q, k, v, g, initial_state):
        return _fla_chunk_gla(q, k, v, g, scale, initial_state, output_final_state)
    with autocast_off(q.device):
        return chunk_gla_torch(q, k, v, g, scale, initial_state, output_final_state)


def default_chunk_size(T: int) -> int:
    """CHUNK_SIZE, or for shorter sequences T rounded up to a multiple of SUB_CHUNK_SIZE: one chunk with
    little padding (short GLUE sentences would otherwise pay for 64 steps)."""
    return min(CHUNK_SIZE, SUB_CHUNK_SIZE * max(1, math.ceil(T / SUB_CHUNK_SIZE)))


def chunk_gla_torch(q, k, v, g, scale, initial_state=None, output_final_state=False, chunk_size=None):
    B, T, H, K = q.shape
    V = v.shape[-1]
    dtype = compute_dtype(q, k, v, g, initial_state)
    out_dtype = v.dtype
    C = chunk_size or default_chunk_size(T)
    N = max(1, math.ceil(T / C))
    # Without autograd, results go straight into preallocated buffers (out=) instead of being
    # stacked afterwards: three fewer full copies per call, which matters for prefill / evaluation.
    in_place = not _needs_grad(q, k, v, g, initial_state)

    # Tensors stay in the input's time-major layout, viewed as [B*N, C, H, d]: per-head matrices are
    # strided views that bmm reads in place, which saves transposing every input (a full copy each).
    def to_chunks(t: torch.Tensor) -> torch.Tensor:
        t = t.to(dtype)
        t = F.pad(t, (0, 0, 0, 0, 0, N * C - T)) if N * C != T else t
        return t.reshape(B * N, C, H, t.shape[-1])

    q, k, v, g = to_chunks(q), to_chunks(k), to_chunks(v), to_chunks(g)
    # b_t in base 2 (exp2 is several times cheaper than exp on CPU): inclusive cumulative sum of
    # g log2(e) inside each chunk, <= 0, decreasing, so b_last is each channel's minimum
    b2 = _ChunkCumsum.apply(g, LOG2E)
    decay = torch.exp2(b2)  # e^{b_t}
    # e^{b_last}, [B*N, 1, H, K]; its own exp2 rather than a slice of `decay`: the same values, but
    # a slice would merge the two gradient paths into b and change dg's rounding (and trained weights)
    chunk_decay = torch.exp2(b2[:, -1:])
    q_fact = q * decay  # q_t e^{b_t}: exponent <= 0
    unsafe = b2[:, -1].amin(dim=-1) < -DIAG_SAFE_LOG * LOG2E  # [B*N, H]
    any_unsafe = bool(unsafe.any())
    # k_j e^{-b_j} <= |k_j| e^{DIAG_SAFE_LOG} in safe chunks; the clamp (only needed, and only paid
    # for, when some chunk is unsafe) keeps the discarded values of unsafe chunks finite
    k_fact = k / (decay.clamp(min=math.exp(-DIAG_SAFE_LOG)) if any_unsafe else decay)
    k_end = k_fact * chunk_decay  # k_j e^{b_last - b_j} (exponent <= 0) for the state update

    # Per-head results are kept head-major ([H, B*N, ...]) so that each head's bmm can write one
    # contiguous block: a strided out= makes bmm fall back to one small matmul per chunk.
    updates = _PerHead(in_place, (H, B * N, K, V), dtype, q.device)
    intra = []
    for h in range(H):
        q_h, k_h, v_h = q_fact[:, :, h], k_fact[:, :, h], v[:, :, h]
        # torch.bmm rather than @: these are 3-D already, and the per-call overhead adds up
        intra_h = torch.bmm(torch.bmm(q_h, k_h.transpose(-1, -2)).tril_(), v_h)  # [B*N, C, V]
        update_h = torch.bmm(k_end[:, :, h].transpose(-1, -2), v_h, out=updates.out(h))  # [B*N, K, V]
        if any_unsafe and bool(unsafe[:, h].any()):
            index = unsafe[:, h].nonzero().squeeze(-1)
            head = (q[index, :, h], k[index, :, h], v[index, :, h], g[index, :, h], b2[index, :, h] / LOG2E)
            exact_intra, exact_update = _exact_chunks(*head)
            intra_h = intra_h.index_put((index,), exact_intra)
            update_h = update_h.index_put((index,), exact_update)
        intra.append(intra_h)
        updates.set(h, update_h)

    # e^{b_last} per head and chunk, [H, B*N, K, 1]
    chunk_decay = chunk_decay.reshape(B * N, H, K).permute(1, 0, 2).unsqueeze(-1)
    starts, final_state = _chunk_states(updates.result(), chunk_decay, initial_state, B, N, dtype, in_place)
    # o = s * (intra + q_fact @ S_start): the scale folded into one fused multiply-add per head
    o = _PerHead(in_place, (H, B * N, C, V), dtype, q.device)
    for h in range(H):
        o.set(h, torch.baddbmm(intra[h], q_fact[:, :, h], starts[h], beta=scale, alpha=scale, out=o.out(h)))
    o = o.result()  # [H, B*N, C, V]
    # back to [B, T, H, V] (a view; callers that reshape heads into features copy it once)
    o = o.reshape(H, B, N * C, V)[:, :, :T].permute(1, 2, 0, 3)
    return o.to(out_dtype), (final_state if output_final_state else None)


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class _PerHead:
    """One [B*N, ...] result per head, gathered as [H, B*N, ...].

    Without autograd (``in_place``) ops write straight into a preallocated buffer through ``out(h)``;
    with autograd the results are stacked at the end (differentiable).
    """

    def __init__(self, in_place: bool, shape: tuple[int, ...], dtype: torch.dtype, device):
        self.buffer = torch.empty(shape, dtype=dtype, device=device) if in_place else None
        self.parts: list[torch.Tensor] = []

    def out(self, h: int) -> torch.Tensor | None:
        return None if self.buffer is None else self.buffer[h]

    def set(self, h: int, result: torch.Tensor) -> None:
        if self.buffer is None:
            self.parts.append(result)
        elif result.data_ptr() != self.buffer[h].data_ptr():  # not written through out(h)
            self.buffer[h].copy_(result)

    def result(self) -> torch.Tensor:
        return self.buffer if self.buffer is not None else torch.stack(self.parts)


class _ChunkCumsum(torch.autograd.Function):
    """``scale`` times the inclusive cumulative sum over the chunk axis of [B*N, C, H, K].

    A running sum, one in-place add per step of the chunk (C small ops): torch.cumsum along a
    non-last dimension, and a triangular matmul, both cost several times more on CPU. The gradient
    is the same running sum backwards in time.
    """

    @staticmethod
    def forward(ctx, g, scale):
        ctx.scale = scale
        return _running_sum(g * scale, reverse=False)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        return _running_sum(grad * ctx.scale, reverse=True), None


def _running_sum(x: torch.Tensor, reverse: bool) -> torch.Tensor:
    """Cumulative sum along dim 1, in place (``x`` must be a fresh tensor)."""
    steps = x.unbind(1)
    if reverse:
        steps = steps[::-1]
    for previous, current in zip(steps[:-1], steps[1:]):
        current.add_(previous)
    return x


def _chunk_states(updates, chunk_decay, initial_state, B, N, dtype, in_place):
    """State at the start of every chunk ([H, B*N, K, V]) and after the last chunk ([B, H, K, V]).

    updates: sum_j k_j e^{b_last - b_j} v_j^T per chunk, [H, B*N, K, V]; chunk_decay: e^{b_last},
    [H, B*N, K, 1]. Head-major, as the per-head matmuls that produce and read them.
    """
    H, BN, K, V = updates.shape
    state = updates.new_zeros(H, B, K, V) if initial_state is None else initial_state.to(dtype).transpose(0, 1)
    per_chunk = list(zip(updates.reshape(H, B, N, K, V).unbind(2), chunk_decay.reshape(H, B, N, K, 1).unbind(2)))
    if not in_place:
        starts = []
        for update_n, decay_n in per_chunk:
            starts.append(state)
            state = torch.addcmul(update_n, decay_n, state)
        return torch.stack(starts, dim=2).reshape(H, BN, K, V), state.transpose(0, 1).contiguous()
    starts = torch.empty(H, B, N, K, V, dtype=dtype, device=updates.device)
    start_views = starts.unbind(2)
    start_views[0].copy_(state)
    for (update_n, decay_n), start_n, next_start in zip(per_chunk[:-1], start_views[:-1], start_views[1:]):
        torch.addcmul(update_n, decay_n, start_n, out=next_start)
    update_n, decay_n = per_chunk[-1]
    final_state = torch.addcmul(update_n, decay_n, start_views[-1])
    return starts.reshape(H, BN, K, V), final_state.transpose(0, 1).contiguous()


def _exact_chunks(q, k, v, g, b):
    """For [n, C, d] chunks of one head: the intra-chunk output sum_{j <= t} A[t, j] v_j (unscaled)
    and the state update sum_j k_j e^{b_last - b_j} v_j^T, exact for any gate strength.

    The output uses the two-level form (sub-chunks of ``SUB_CHUNK_SIZE``, see the module docstring);
    the update only needs exponents <= 0.
    """
    n, C, K = q.shape
    V = v.shape[-1]
    S = math.gcd(C, SUB_CHUNK_SIZE)
    M = C // S
    update = (k * (b[:, -1:] - b).exp()).transpose(-1, -2) @ v

    def split(t: torch.Tensor) -> torch.Tensor:  # [n, C, d] -> [1, 1, n, M, S, d]
        return t.reshape(1, 1, n, M, S, t.shape[-1])

    q, k, v, g = split(q), split(k), split(v), split(g)
    gates = _SubChunkGates(g)
    q_fact = q * gates.local.exp()  # q_t e^{b_t - r_i}, exponent <= 0
    k_end = k * (gates.total.unsqueeze(-2) - gates.local).exp()  # k_j e^{r_{m+1} - b_j}, <= 0
    o = _diagonal_blocks(q, q_fact, k_end, k, v, gates)
    o = o + _off_diagonal_blocks(q_fact, k_end, v, gates)
    return o.reshape(n, C, V), update


class _SubChunkGates:
    """Cumulative log-decays of a [B, H, N, M, S, K] gate tensor, kept in small pieces for precision.

    local: b_t - r_i, inclusive cumsum inside the sub-chunk (<= 0)
    total: sum of g over each sub-chunk (<= 0), [.., M, K]
    start: r_i, sum of g from the chunk start to just before sub-chunk i (<= 0), [.., M, K]
    end:   b at the chunk end, [.., K]
    Cumsums are done as products with a triangular matrix: torch.cumsum is slow along inner dims.
    """

    def __init__(self, g: torch.Tensor):
        S = g.shape[-2]
        M = g.shape[-3]
        self.local = _lower_ones(S, g) @ g
        self.total = self.local[..., -1, :]
        self.start = _strictly_lower_ones(M, g) @ self.total
        self.end = self.start[..., -1, :] + self.total[..., -1, :]


def _diagonal_blocks(q, q_fact, k_end, k, v, gates):
    """Key and query in the same sub-chunk: factorised within 16 steps, exact where decay is strong.

    The key factor e^{r_i - b_j} = e^{r_{i+1} - b_j} * e^{-total_i} reuses k_end; the second factor is
    >= 1, bounded by e^{DIAG_SAFE_LOG} through the clamp (clamped blocks are recomputed exactly).
    """
    S = q_fact.shape[-2]
    growth = (-gates.total).clamp(max=DIAG_SAFE_LOG).exp().unsqueeze(-2)  # [.., M, 1, K]
    A = q_fact @ (k_end * growth).transpose(-1, -2)  # [B, H, N, M, S, S]
    A = _fix_strong_decay_blocks(A, q, k, gates)
    A = A.masked_fill(~_causal(S, A.device), 0.0)
    return A @ v


def _off_diagonal_blocks(q_fact, k_end, v, gates):
    """Keys in sub-chunks m < i for queries in sub-chunk i.

    e^{b_t - b_j} = e^{b_t - r_i} * e^{r_i - r_{m+1}} * e^{r_{m+1} - b_j}: all three exponents are <= 0
    (r_{m+1} is the boundary after key sub-chunk m). The middle factor is a per-channel vector per
    (i, m) pair, folded into the keys.
    """
    B, H, N, M, S, V = v.shape
    K = q_fact.shape[-1]
    pieces = [v.new_zeros(B, H, N, 1, S, V)]
    for i in range(1, M):
        between = (gates.start[..., i : i + 1, :] - gates.start[..., 1 : i + 1, :]).exp()  # [.., i, K]
        keys = (k_end[..., :i, :, :] * between.unsqueeze(-2)).reshape(B, H, N, i * S, K)
        A = q_fact[..., i, :, :] @ keys.transpose(-1, -2)  # [B, H, N, S, i*S]
        pieces.append((A @ v[..., :i, :, :].reshape(B, H, N, i * S, V)).unsqueeze(-3))
    return torch.cat(pieces, dim=-3)


def _fix_strong_decay_blocks(A, q, k, gates):
    """Recompute, by masked differences, the diagonal blocks whose factorisation was clamped.

    A block is affected when some channel decays by more than DIAG_SAFE_LOG over its 16 steps.
    Only those blocks are recomputed, so ordinary gates cost nothing extra.
    """
    S, K = q.shape[-2:]
    unsafe = (gates.total < -DIAG_SAFE_LOG).any(dim=-1).reshape(-1)
    if not bool(unsafe.any()):
        return A
    index = unsafe.nonzero().squeeze(-1)
    qs = q.reshape(-1, S, K)[index]
    ks = k.reshape(-1, S, K)[index]
    bs = gates.local.reshape(-1, S, K)[index]
    log_diff = bs.unsqueeze(-2) - bs.unsqueeze(-3)  # [m, t, j, K] = b_t - b_j
    # mask before exponentiating: for j > t the difference is positive and could overflow
    log_diff = log_diff.masked_fill(~_causal(S, bs.device).unsqueeze(-1), -math.inf)
    exact = torch.einsum("mtk,mjk,mtjk->mtj", qs, ks, log_diff.exp())
    return A.reshape(-1, S, S).index_put((index,), exact).reshape(A.shape)


def _causal(n: int, device) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def _lower_ones(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.ones(n, n, dtype=like.dtype, device=like.device).tril()


def _strictly_lower_ones(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.ones(n, n, dtype=like.dtype, device=like.device).tril(-1)


def _fla_chunk_gla(q, k, v, g, scale, initial_state, output_final_state):
    """fla 0.6's triton kernel: same argument order and layout, default [B, H, K, V] fp32 state."""
    from fla.ops.gla import chunk_gla as fla_chunk_gla

    if initial_state is not None:
        initial_state = initial_state.float()  # fla asserts an fp32 state
    o, final_state = fla_chunk_gla(
        q, k, v, g, scale=scale, initial_state=initial_state, output_final_state=output_final_state
    )
    count_fla_call("chunk_gla")
    return o, (final_state.float() if final_state is not None else None)
