"""Efficiency profiling: latency, throughput and memory of train / prefill / decode over a grid of
sequence lengths and batch sizes, analytic FLOPs, and log-log scaling slopes.

Entry points: :func:`profile_model` (one model's sweep -> DataFrame in :data:`COLUMNS` order),
:func:`settings_from_dict`, :func:`fit_slopes`, :func:`combine_efficiency`, :func:`flops_per_token`,
:func:`measure_matmul_peak_gflops` (the denominator of the ``mfu`` column).
"""

from kernels._lazy import lazy_exports

# public name -> submodule; imported on first use (the table and report jobs then skip torch)
_EXPORTS = {
    "flops_per_token": "flops",
    "forward_flops_per_token": "flops",
    "ModelSpec": "spec",
    "build_model": "measure",
    "state_nbytes": "measure",
    "measure_matmul_peak_gflops": "peak",
    "ProfileSettings": "settings",
    "SettingsError": "settings",
    "settings_from_dict": "settings",
    "MFU_SUMMARY_COLUMNS": "slopes",
    "SLOPE_COLUMNS": "slopes",
    "fit_loglog": "slopes",
    "fit_slopes": "slopes",
    "mfu_summary": "slopes",
    "COLUMNS": "columns",
    "DESIGN_COLUMNS": "columns",
    "ProfilingError": "sweep",
    "grid_points": "sweep",
    "profile_model": "sweep",
    "combine_efficiency": "tables",
    "read_efficiency_csv": "tables",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
