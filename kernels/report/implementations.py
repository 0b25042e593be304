"""Which code produced each model's efficiency numbers (the ``implementation`` and ``flops_source`` columns
of efficiency.csv, written by kernels.profiling from the family registry): the report's implementation table
and the labels that mark transformers' slow paths."""

from __future__ import annotations

import pandas as pd

from kernels.report.tables import ReportData

IMPLEMENTATION_HINT = (
    '<p class="hint">Per model, the code that ran it when profiled (kernels.families): this package\'s own '
    "models (with fla's triton kernels or the pure-PyTorch ops, column kernels), transformers' own "
    "implementation of a model type, or fla's. Transformers' recurrent models have a fast path (CUDA kernels "
    "of mamba_ssm / causal_conv1d) and a pure-PyTorch <i>slow path</i>: a row marked slow path measured the "
    "latter, so its latency, throughput and MFU are those of that implementation, not of the architecture with "
    "its kernels. FLOPs per token are the analytic formula where the family has one, otherwise counted by "
    "torch's FlopCounterMode over the timed step (it sees every matmul, convolution and attention run through "
    "torch, none run by a triton kernel, so for fla's models on CUDA it is a lower bound).</p>")


def implementation_table(data: ReportData) -> pd.DataFrame:
    """One row per profiled model: implementation, kernels, FLOPs source and whether it is a slow path."""
    efficiency = data.get("efficiency")
    if efficiency is None or "implementation" not in efficiency.columns:
        return pd.DataFrame()
    rows = []
    for model in [m for m in data.labels if m in set(efficiency["model"])]:
        own = efficiency[efficiency["model"] == model]
        implementation = "; ".join(sorted({str(v) for v in own["implementation"].dropna()})) or "not recorded"
        source = "; ".join(sorted({str(v) for v in own.get("flops_source", pd.Series(dtype=str)).dropna()}))
        # the kernels column says which GLA / HGRN ops this package's models ran; other libraries run their own
        kernels = ("; ".join(sorted({str(v) for v in own.get("kernels", pd.Series(dtype=str)).dropna()}))
                   if implementation.startswith("kernels ") else "the library's own")
        rows.append({"Model": data.labels[model], "Implementation": implementation, "Kernels": kernels or "–",
                     "FLOPs per token": source or "formula",
                     "Slow path": "yes" if is_slow_path(implementation) else "no"})
    return pd.DataFrame(rows).set_index("Model")


def is_slow_path(implementation: str | None) -> bool:
    return "slow path" in str(implementation or "")


def implementation_by_model(data: ReportData) -> dict[str, str]:
    """``{model name: implementation}`` from efficiency.csv (the models table's column)."""
    efficiency = data.get("efficiency")
    if efficiency is None or "implementation" not in efficiency.columns:
        return {}
    return {model: "; ".join(sorted({str(v) for v in rows["implementation"].dropna()}))
            for model, rows in efficiency.groupby("model")}
