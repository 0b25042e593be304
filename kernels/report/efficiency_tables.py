"""Efficiency tables of the report: MFU per model and mode (from efficiency_slopes.csv), the measured
fine-tuning throughput per model and task (finetune_throughput.csv), and the crossover: from which sequence
length the linear-time models are faster and lighter than the Transformer++ (efficiency.csv)."""

from __future__ import annotations

import pandas as pd

from kernels.report.charts import MODE_ORDER, peak_description
from kernels.report.tables import ReportData, baseline_model, crossover_lengths

DASH = "–"


def _percent(value: float) -> str:
    return DASH if pd.isna(value) else f"{100 * value:.1f}%"


def mfu_table(data: ReportData) -> pd.DataFrame:
    """Per model (rows) and mode (columns): median MFU over the profiled lengths and the best one, smallest
    batch size. Empty when the slopes table has no MFU columns."""
    slopes = data.get("slopes")
    if slopes is None or "median_mfu" not in slopes.columns or slopes["median_mfu"].notna().sum() == 0:
        return pd.DataFrame()
    slopes = slopes[slopes["batch_size"] == slopes["batch_size"].min()]
    modes = [m for m in MODE_ORDER if m in set(slopes["mode"])]
    rows = []
    for model in [m for m in data.labels if m in set(slopes["model"])]:
        own = slopes[slopes["model"] == model].groupby("mode")[["median_mfu", "max_mfu"]].mean()
        row = {"Model": data.labels[model]}
        for mode in modes:
            median, best = (own.loc[mode, "median_mfu"], own.loc[mode, "max_mfu"]) if mode in own.index else (
                float("nan"), float("nan"))
            row[mode] = DASH if pd.isna(median) else f"{_percent(median)} ({_percent(best)})"
        rows.append(row)
    return pd.DataFrame(rows).set_index("Model")


def mfu_peak(data: ReportData) -> str:
    """The matmul peak the MFU is relative to (e.g. ``202 GFLOP/s (cpu)``, with the jobs' measurements), from
    the efficiency table; from the slopes table where that is all there is."""
    for name in ("efficiency", "slopes"):
        table = data.get(name)
        if table is not None and "peak_gflops" in table.columns and table["peak_gflops"].notna().any():
            return peak_description(table)
    return "not measured"


def throughput_table(data: ReportData) -> pd.DataFrame:
    """Fine-tuning tokens/s (median over logged steps) per model (rows) and task (columns); with several seeds
    the mean ± sd over seeds."""
    throughput = data.get("throughput")
    if throughput is None:
        return pd.DataFrame()
    grouped = throughput.groupby(["model", "task"])["tokens_per_s_median"]
    stats = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "seeds": grouped.size()})
    tasks = list(dict.fromkeys(throughput["task"]))
    rows = []
    for model in [m for m in data.labels if m in set(throughput["model"])]:
        row = {"Model": data.labels[model]}
        for task in tasks:
            if (model, task) not in stats.index:
                row[task] = DASH
                continue
            mean, std = stats.loc[(model, task), "mean"], stats.loc[(model, task), "std"]
            row[task] = f"{mean:,.0f}" + ("" if pd.isna(std) else f" ± {std:,.0f}")
        row["Seeds"] = int(stats.loc[model, "seeds"].max())
        rows.append(row)
    return pd.DataFrame(rows).set_index("Model")


def _crossover_cell(row: pd.Series | None, verb: str) -> str:
    if row is None:
        return DASH
    if pd.isna(row["from_len"]):
        return f"not {verb} up to {int(row['longest']):,}"
    return f"from {int(row['from_len']):,}"


def crossover_table(data: ReportData) -> pd.DataFrame:
    """Per model other than the baseline (rows) and mode: the sequence length from which it is faster (median
    latency) and lighter (peak memory) than the baseline at every longer profiled length, or "not ... up to"
    the longest length both ran."""
    baseline = baseline_model(data)
    found = crossover_lengths(data.get("efficiency"), baseline)
    if found.empty:
        return pd.DataFrame()
    base = data.labels.get(baseline, baseline)
    modes = [m for m in MODE_ORDER if m in set(found["mode"])]
    rows = []
    for model in [m for m in data.labels if m in set(found["model"])]:
        row = {"Model": data.labels[model]}
        for mode in modes:
            for quantity in ("faster", "lighter"):
                match = found[(found["model"] == model) & (found["mode"] == mode) & (found["quantity"] == quantity)]
                row[f"{mode}: {quantity} than {base}"] = _crossover_cell(
                    match.iloc[0] if len(match) else None, quantity)
        rows.append(row)
    return pd.DataFrame(rows).set_index("Model")


def crossover_statements(data: ReportData) -> list[str]:
    """One sentence per mode: where (or whether) each linear-time model overtakes the baseline, e.g. "train:
    GLA is faster than Transformer++ from 2,048 tokens and lighter from 512; ..."."""
    baseline = baseline_model(data)
    found = crossover_lengths(data.get("efficiency"), baseline)
    if found.empty:
        return []
    base = data.labels.get(baseline, baseline)
    sentences = []
    for mode in [m for m in MODE_ORDER if m in set(found["mode"])]:
        parts = []
        for model in [m for m in data.labels if m in set(found["model"])]:
            rows = found[(found["model"] == model) & (found["mode"] == mode)].set_index("quantity")
            if rows.empty:
                continue
            clauses = []
            for quantity in ("faster", "lighter"):
                if quantity not in rows.index:
                    continue
                start, longest = rows.loc[quantity, "from_len"], int(rows.loc[quantity, "longest"])
                clauses.append(f"{quantity} than {base} from {int(start):,} tokens" if pd.notna(start)
                               else f"not {quantity} than {base} up to the longest length, {longest:,}")
            parts.append(f"{data.labels.get(model, model)} is " + " and ".join(clauses))
        sentences.append(f"{mode}: " + "; ".join(parts) + ".")
    return sentences
