"""HGRN's elementwise gated recurrence h_t = exp(g_t) * h_{t-1} + x_t in [batch, time, dim] layout.

* :func:`chunk_hgrn` - chunked scan (fast path for training / prefill).
* :func:`fused_recurrent_hgrn` - step-by-step loop (reference; with T = 1, the decode step).
* :func:`naive_recurrent_hgrn` - the plainest loop, ground truth for tests.
On CUDA, when fla is importable and not forced off (kernels.ops.backend), the first two call fla.
"""

from .chunk import chunk_hgrn
from .fused_recurrent import fused_recurrent_hgrn
from .naive import naive_recurrent_hgrn

__all__ = ["chunk_hgrn", "fused_recurrent_hgrn", "naive_recurrent_hgrn"]
