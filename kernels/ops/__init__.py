"""Linear-recurrence kernels (GLA, HGRN) in pure PyTorch, dispatching to fla's triton kernels on CUDA.

See :mod:`kernels.ops.gla`, :mod:`kernels.ops.hgrn` and :mod:`kernels.ops.backend`.
"""

from kernels._lazy import lazy_exports

# public name -> submodule; imported on first use (``kernels.ops.backend`` alone needs no torch)
_EXPORTS = {
    "chunk_gla": "gla",
    "fused_recurrent_gla": "gla",
    "naive_recurrent_gla": "gla",
    "chunk_hgrn": "hgrn",
    "fused_recurrent_hgrn": "hgrn",
    "naive_recurrent_hgrn": "hgrn",
    "set_force_torch": "backend",
    "use_fla": "backend",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
