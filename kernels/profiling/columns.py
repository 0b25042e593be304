"""Columns of efficiency.csv (documented in README), in a module of their own so that the table jobs
read them without importing torch."""

# DESIGN.md columns first, then the extras.
DESIGN_COLUMNS = ["model", "device", "mode", "batch_size", "seq_len", "median_ms", "p10_ms", "p90_ms",
                  "tokens_per_s", "peak_mem_mb", "params"]
# mfu = achieved_gflops / peak_gflops, the device's matmul peak measured at the start of the sweep
# (see kernels.profiling.flops and kernels.profiling.peak).
# kernels / fla_version / triton_version: which GLA and HGRN kernels ran (kernels.ops.backend.kernel_provenance);
# fla_kernel_calls: how many calls of fla's kernels the point made (0 on the pure-PyTorch ops).
# peak_mem_source: what peak_mem_mb is measured from ("tensors" on CPU, "cuda_allocator"); rss_peak_mb: on CPU
# the process' resident-set growth over the same point, for reference (kernels.profiling.measure).
# implementation: which code ran the model (kernels.families: library, version, backbone class, path);
# flops_source: "formula" (kernels.profiling.flops) or "FlopCounterMode" (counted, for families without one).
EXTRA_COLUMNS = ["status", "threads", "dtype", "state_mb", "flops_per_token", "achieved_gflops", "repeats",
                 "device_name", "peak_gflops", "mfu", "kernels", "fla_version", "triton_version",
                 "fla_kernel_calls", "peak_mem_source", "rss_peak_mb", "implementation", "flops_source"]
COLUMNS = DESIGN_COLUMNS + EXTRA_COLUMNS
STATUSES = ("ok", "oom")
# results/tables/efficiency.csv adds the MFU denominator shared by every model on the same hardware
# (kernels.profiling.tables.with_common_peak); its mfu column is against it.
TABLE_COLUMNS = COLUMNS + ["mfu_peak_gflops"]
