"""Gated linear attention (GLA) kernels in fla's [batch, time, heads, dim] layout.

* :func:`chunk_gla` - chunked form (fast path for training / prefill), exact for any gate strength.
* :func:`fused_recurrent_gla` - step-by-step loop (reference; with T = 1, the decode step).
* :func:`naive_recurrent_gla` - the plainest loop, ground truth for tests.
State layout: [batch, heads, K, V] (fla's layer caches [B, H, V, K] via ``state_v_first=True``).
On CUDA, when fla is importable and not forced off (kernels.ops.backend), the first two call fla.
"""

from .chunk import chunk_gla
from .fused_recurrent import fused_recurrent_gla
from .naive import naive_recurrent_gla

__all__ = ["chunk_gla", "fused_recurrent_gla", "naive_recurrent_gla"]
