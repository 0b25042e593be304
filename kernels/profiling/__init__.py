"""Efficiency profiling: latency, throughput and memory of train / prefill / decode over a grid of
sequence lengths and batch sizes, analytic FLOPs, and log-log scaling slopes.

Entry points: :func:`profile_model` (one model's sweep -> DataFrame in :data:`COLUMNS` order),
:func:`settings_from_dict`, :func:`fit_slopes`, :func:`combine_efficiency`, :func:`flops_per_token`,
:func:`measure_matmul_peak_gflops` (the denominator of the ``mfu`` column).
"""

from kernels.profiling.flops import flops_per_token, forward_flops_per_token
from kernels.profiling.measure import ModelSpec, build_model, state_nbytes
from kernels.profiling.peak import measure_matmul_peak_gflops
from kernels.profiling.settings import ProfileSettings, SettingsError, settings_from_dict
from kernels.profiling.slopes import MFU_SUMMARY_COLUMNS, SLOPE_COLUMNS, fit_loglog, fit_slopes, mfu_summary
from kernels.profiling.sweep import COLUMNS, DESIGN_COLUMNS, ProfilingError, grid_points, profile_model
from kernels.profiling.tables import combine_efficiency, read_efficiency_csv

__all__ = [
    "COLUMNS", "DESIGN_COLUMNS", "MFU_SUMMARY_COLUMNS", "SLOPE_COLUMNS", "ModelSpec", "ProfileSettings",
    "ProfilingError", "SettingsError", "build_model", "combine_efficiency", "fit_loglog", "fit_slopes",
    "flops_per_token", "forward_flops_per_token", "grid_points", "measure_matmul_peak_gflops", "mfu_summary",
    "profile_model", "read_efficiency_csv", "settings_from_dict", "state_nbytes",
]
