"""Linear-recurrence kernels (GLA, HGRN) in pure PyTorch, dispatching to fla's triton kernels on CUDA.

See :mod:`kernels.ops.gla`, :mod:`kernels.ops.hgrn` and :mod:`kernels.ops.backend`.
"""

from .backend import set_force_torch, use_fla
from .gla import chunk_gla, fused_recurrent_gla, naive_recurrent_gla
from .hgrn import chunk_hgrn, fused_recurrent_hgrn, naive_recurrent_hgrn

__all__ = [
    "chunk_gla",
    "chunk_hgrn",
    "fused_recurrent_gla",
    "fused_recurrent_hgrn",
    "naive_recurrent_gla",
    "naive_recurrent_hgrn",
    "set_force_torch",
    "use_fla",
]
