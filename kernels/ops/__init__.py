"""Linear-recurrence kernels (GLA, HGRN) in pure PyTorch, dispatching to fla's triton kernels on CUDA.

See :mod:`kernels.ops.gla`, :mod:`kernels.ops.hgrn` and :mod:`kernels.ops.backend`.
"""

from kernels._lazy import lazy_exports

# submodule -> its public names; imported on first use (``kernels.ops.backend`` alone needs no torch)
_EXPORTS = {
    "gla": ["chunk_gla", "fused_recurrent_gla", "naive_recurrent_gla"],
    "hgrn": ["chunk_hgrn", "fused_recurrent_hgrn", "naive_recurrent_hgrn"],
    "backend": ["set_force_torch", "use_fla"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
