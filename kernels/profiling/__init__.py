"""Efficiency profiling: latency, throughput and memory of train / prefill / decode over a grid of
sequence lengths and batch sizes, FLOPs (analytic per family, or counted with FlopCounterMode where a family
has no formula), and log-log scaling slopes.

Entry points: :func:`profile_model` (one model's sweep -> DataFrame in :data:`COLUMNS` order),
:func:`settings_from_dict`, :func:`fit_slopes`, :func:`combine_efficiency`, :func:`flops_per_token`,
:func:`measure_matmul_peak_gflops` (the denominator of the ``mfu`` column).
"""

from kernels._lazy import lazy_exports

# submodule -> its public names; imported on first use (the table and report jobs then skip torch)
_EXPORTS = {
    "flops": ["flops_per_token", "forward_flops_per_token", "lm_head_flops_per_token"],
    "spec": ["ModelSpec"],
    "measure": ["build_model"],
    "peak": ["measure_matmul_peak_gflops"],
    "settings": ["ProfileSettings", "SettingsError", "settings_from_dict"],
    "slopes": ["MFU_SUMMARY_COLUMNS", "SLOPE_COLUMNS", "fit_loglog", "fit_slopes", "mfu_summary"],
    "columns": ["COLUMNS", "DESIGN_COLUMNS", "TABLE_COLUMNS"],
    "sweep": ["ProfilingError", "grid_points", "profile_model"],
    "tables": ["combine_efficiency", "read_efficiency_csv", "with_common_peak"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
