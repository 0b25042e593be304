"""The report's setup section: which models (and how big), which data, which hardware, which software."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

import pandas as pd

from kernels.report.implementations import implementation_by_model
from kernels.report.tables import ReportData

# Packages whose versions decide the numbers (torch, transformers, tokenizers) or the page (altair, vl-convert).
VERSIONED_PACKAGES = ("resilient-efficient-llms", "torch", "transformers", "tokenizers", "datasets", "numpy",
                      "pandas", "scipy", "snakemake", "altair", "vl-convert-python", "flash-linear-attention")
ARCH_FIELDS = {"hidden_size": "hidden", "num_hidden_layers": "layers", "num_heads": "heads",
               "expand_k": "expand_k", "expand_v": "expand_v", "hidden_ratio": "MLP ratio"}


def _model_config(config: dict[str, Any], model: str) -> dict[str, Any]:
    entry = (config.get("models") or {}).get(model)
    return entry if isinstance(entry, dict) else {}


def _architecture(entry: dict[str, Any]) -> str:
    if entry.get("pretrained"):
        revision = f"@{entry['revision']}" if entry.get("revision") else ""
        return f"pretrained {entry['pretrained']}{revision}"
    arch = entry.get("arch") or {}
    parts = ([f"{arch['model_type']}"] if arch.get("model_type") else []) + [
        f"{title} {arch[key]}" for key, title in ARCH_FIELDS.items() if key in arch]
    return ("from scratch: " + ", ".join(parts)) if parts else "–"


def models_table(data: ReportData, config: dict[str, Any]) -> pd.DataFrame:
    """One row per model: label, family, parameter count (as profiled) and architecture."""
    efficiency = data.get("efficiency")
    params = efficiency.groupby("model")["params"].max() if efficiency is not None else pd.Series(dtype=float)
    implementations = implementation_by_model(data)
    rows = []
    for model, label in data.labels.items():
        entry = _model_config(config, model)
        rows.append({"Model": label, "Name": model, "Family": entry.get("family", "–"),
                     "Parameters": params.get(model, float("nan")), "Architecture": _architecture(entry),
                     "Implementation (profiled)": implementations.get(model, "–")})
    return pd.DataFrame(rows)


def _items(metrics: pd.DataFrame | None, dataset: str) -> pd.Series:
    """Items per task (and split) of ``dataset``: the largest ``n`` over models and seeds of whole-set accuracy."""
    if metrics is None:
        return pd.Series(dtype=float)
    rows = metrics[(metrics["dataset"] == dataset) & (metrics["metric"] == "accuracy")
                   & (metrics["level"].astype(str) == "all") & (metrics["method"].astype(str) == "all")]
    counts = rows.groupby(["task", "split"])["n"].max()
    return counts.groupby(level="task").apply(
        lambda per_split: ", ".join(f"{int(n):,}" + (f" ({split})" if len(per_split) > 1 else "")
                                    for (_, split), n in per_split.items()))


def training_cell(count: int | None, cap: int | None) -> str:
    """The training examples used (e.g. RTE's 2,490 under a 16,000 cap); a count at the cap is a seeded subset.
    Without the count (training data not given) only the cap is known, and the cell says so."""
    if count is None:
        return f"not known (cap {cap:,})" if cap else "not known (no cap)"
    return f"{count:,}" + (" (seeded subset)" if cap and count >= cap else "")


def data_table(data: ReportData, config: dict[str, Any]) -> pd.DataFrame:
    """One row per configured (or evaluated) task: training examples used, GLUE validation and AdvGLUE item
    counts."""
    metrics = data.get("metrics")
    tasks = list(config.get("tasks") or [])
    if metrics is not None:
        tasks += [t for t in metrics["task"].unique() if t not in tasks]
    glue, advglue = _items(metrics, "glue"), _items(metrics, "advglue")
    cap = (config.get("data") or {}).get("max_train_examples")
    rows = [{"Task": task, "Training examples": training_cell(data.train_counts.get(task), cap),
             "GLUE validation items": glue.get(task, "not evaluated"),
             "AdvGLUE items": advglue.get(task, "not evaluated")} for task in tasks]
    return pd.DataFrame(rows, columns=["Task", "Training examples", "GLUE validation items", "AdvGLUE items"])


def hardware_table(data: ReportData, config: dict[str, Any]) -> pd.DataFrame:
    """Where things ran: the profiled device(s) from efficiency.csv and the fine-tuning settings from the config."""
    rows = []
    efficiency = data.get("efficiency")
    if efficiency is not None:
        columns = [c for c in ("device", "device_name", "dtype", "threads") if c in efficiency.columns]
        for values in efficiency[columns].drop_duplicates().itertuples(index=False):
            described = dict(zip(columns, values))
            rows.append({"Stage": "profiling", "Device": str(described.get("device", "–")),
                         "Device name": str(described.get("device_name", "–")),
                         "dtype": str(described.get("dtype", "–")), "Threads": str(described.get("threads", "–"))})
    finetune = config.get("finetune") or {}
    if finetune:
        rows.append({"Stage": "fine-tuning (configured)", "Device": str(finetune.get("device", "–")),
                     "Device name": "–", "dtype": str(finetune.get("dtype", "–")),
                     "Threads": str(finetune.get("threads", "–"))})
    rows.append({"Stage": "report", "Device": platform.machine(), "Device name": platform.processor() or "–",
                 "dtype": "–", "Threads": "–"})
    return pd.DataFrame(rows, columns=["Stage", "Device", "Device name", "dtype", "Threads"])


def versions_table() -> pd.DataFrame:
    """Versions of Python and the packages that matter, as installed where the report was built."""
    rows = [{"Package": "python", "Version": sys.version.split()[0]},
            {"Package": "platform", "Version": platform.platform()}]
    for package in VERSIONED_PACKAGES:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "not installed"
        rows.append({"Package": package, "Version": version})
    return pd.DataFrame(rows)
