"""Assemble the report: tables and notes, every chart embedded in one offline page and saved as SVG/PNG."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import vl_convert
import yaml

from kernels.io import atomic_path, write_text
from kernels.report.charts import FIGURE_LIST, Style
from kernels.report.page import chart_block, page, vegalite_version
from kernels.report.tables import (ReportData, largest_common_point, model_order, per_model_mean, read_table,
                                   set_names, totals)

DEFAULT_SETTINGS = {"title": "Efficiency, performance and robustness of efficient LLM architectures",
                    "width": 420, "height": 260}


def load_report_data(paths: dict[str, str | os.PathLike | None], labels: dict[str, str]) -> ReportData:
    """Read every input table; absent tables become notes. ``paths`` keys: metrics, scores, throughput,
    efficiency, slopes."""
    notes: list[str] = []
    tables = {name: read_table(name, paths.get(name), notes) for name in
              ("metrics", "scores", "throughput", "efficiency", "slopes")}
    data = ReportData(tables=tables, labels=model_order(labels, tables), notes=notes)
    data.notes.extend(coverage_notes(data, labels))
    return data


def coverage_notes(data: ReportData, configured: dict[str, str]) -> list[str]:
    """What is missing: configured models without results, tasks without AdvGLUE, OOM points, partial scores."""
    notes = []
    metrics, efficiency, scores = data.get("metrics"), data.get("efficiency"), data.get("scores")
    for name, table in (("metrics", metrics), ("efficiency", efficiency)):
        if table is not None:
            absent = [configured[m] for m in configured if m not in set(table["model"])]
            if absent:
                notes.append(f"No {name} results for: {', '.join(absent)}.")
    if metrics is not None:
        glue = metrics[metrics["dataset"] == "glue"][["model", "task"]].drop_duplicates()
        adv = metrics[metrics["dataset"] == "advglue"][["model", "task"]].drop_duplicates()
        lacking = glue.merge(adv, how="left", indicator=True)
        lacking = lacking[lacking["_merge"] == "left_only"]
        if adv.empty:
            notes.append("No AdvGLUE results: AdvGLUE accuracy and robustness are missing.")
        elif not lacking.empty:
            pairs = ", ".join(f"{data.labels.get(m, m)}/{t}" for m, t in lacking[["model", "task"]].itertuples(
                index=False))
            notes.append(f"AdvGLUE results missing for: {pairs}.")
    if scores is not None and "complete" in scores.columns:
        complete = scores["complete"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes"))
        partial = scores[(scores["task"] == "overall") & ~complete]
        if not partial.empty:
            names = ", ".join(sorted({data.labels.get(m, m) for m in partial["model"]}))
            notes.append(f"AdvGLUE overall score incomplete (not every AdvGLUE task evaluated) for: {names}.")
    if efficiency is not None and "status" in efficiency.columns:
        oom = efficiency[efficiency["status"] == "oom"]
        if not oom.empty:
            points = ", ".join(f"{data.labels.get(r.model, r.model)} {r.mode}@{r.seq_len}"
                               for r in oom.itertuples(index=False))
            notes.append(f"Out of memory (not measured): {points}.")
    return notes


def _at_largest(efficiency: pd.DataFrame | None, mode: str, column: str) -> tuple[pd.Series, int | None]:
    rows = largest_common_point(efficiency, mode)
    if rows.empty or column not in rows.columns:
        return pd.Series(dtype=float), None
    return rows.groupby("model")[column].mean(), int(rows["seq_len"].iloc[0])


def headline_table(data: ReportData) -> pd.DataFrame:
    """One row per model with the numbers of the abstract: accuracy, robustness, speed, memory."""
    metrics, efficiency = data.get("metrics"), data.get("efficiency")
    columns: dict[str, pd.Series] = {}
    if efficiency is not None:
        columns["Parameters"] = efficiency.groupby("model")["params"].max()
    columns["GLUE accuracy (mean over tasks)"] = per_model_mean(totals(metrics, "accuracy", ("glue",)))
    columns["AdvGLUE accuracy (mean over tasks)"] = per_model_mean(totals(metrics, "accuracy", ("advglue",)))
    columns["Robustness drop (mean)"] = per_model_mean(
        totals(metrics, "robustness_drop", ("advglue", "glue", "advglue_original")))
    scores = data.get("scores")
    if scores is not None:
        columns["AdvGLUE score (overall)"] = scores[scores["task"] == "overall"].groupby("model")["score"].mean()
    for mode, column, title in (("train", "tokens_per_s", "Train tokens/s"),
                                ("prefill", "median_ms", "Prefill ms"),
                                ("decode", "median_ms", "Decode ms/token"),
                                ("decode", "state_mb", "Decode state MiB/seq"),
                                ("train", "peak_mem_mb", "Train peak MiB")):
        values, length = _at_largest(efficiency, mode, column)
        if length is not None:
            columns[f"{title} @ {length}"] = values
    throughput = data.get("throughput")
    if throughput is not None:
        columns["Fine-tune tokens/s (median)"] = throughput.groupby("model")["tokens_per_s_median"].median()
    table = pd.DataFrame(columns)
    table = table.reindex([m for m in data.labels if m in table.index])
    table.index = [data.labels[m] for m in table.index]
    table.index.name = "Model"
    return table.dropna(axis=1, how="all")


def task_table(data: ReportData) -> pd.DataFrame:
    """Accuracy [95% CI] per model x task (rows) and evaluation set (columns)."""
    frame = totals(data.get("metrics"), "accuracy", ("glue", "advglue"))
    if frame.empty:
        return frame
    frame = frame.assign(set=set_names(frame),
                         cell=[f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in
                               zip(frame["value"], frame["ci_low"], frame["ci_high"])])
    table = frame.pivot_table(index=["model", "task"], columns="set", values="cell", aggfunc="first")
    order = {name: i for i, name in enumerate(data.labels)}
    table = table.sort_index(key=lambda level: level.map(order) if level.name == "model" else level)
    table = table.reset_index()
    table["model"] = table["model"].map(lambda m: data.labels.get(m, m))
    table.columns.name = None
    return table.rename(columns={"model": "Model", "task": "Task"})


def slopes_table(data: ReportData) -> pd.DataFrame:
    """Fitted scaling exponent per model (rows) and mode (columns), smallest batch size."""
    slopes = data.get("slopes")
    if slopes is None:
        return pd.DataFrame()
    slopes = slopes[slopes["batch_size"] == slopes["batch_size"].min()]
    table = slopes.pivot_table(index="model", columns="mode", values="slope", aggfunc="mean")
    table = table.reindex(index=[m for m in data.labels if m in table.index],
                          columns=[m for m in ("train", "prefill", "decode") if m in table.columns])
    table.index = [data.labels[m] for m in table.index]
    table.index.name = "Model"
    table.columns.name = None
    return table


def _format(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or pd.isna(value):
        return "–"
    value = float(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3f}"


def html_table(table: pd.DataFrame, table_id: str) -> str:
    if table.empty:
        return f'<p id="{table_id}">No data.</p>'
    if table.index.name is not None:
        table = table.reset_index()
    return table.map(_format).to_html(table_id=table_id, classes="data", index=False, escape=True)


def config_yaml(config: dict[str, Any]) -> str:
    # Through JSON first: a config from Snakemake may hold types (paths, custom mappings) YAML cannot dump.
    plain = json.loads(json.dumps(config, default=str))
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)


def render_figures(data: ReportData, style: Style, figures_dir: str | os.PathLike) -> list[tuple[Any, dict]]:
    """Build every chart, write ``{name}.svg`` and ``{name}.png``; returns (figure, spec) pairs."""
    version = vegalite_version()
    built = []
    for figure in FIGURE_LIST:
        spec = figure.build(data, style).to_dict()
        svg = vl_convert.vegalite_to_svg(spec, vl_version=version)
        png = vl_convert.vegalite_to_png(spec, vl_version=version, scale=2)
        write_text(Path(figures_dir) / f"{figure.name}.svg", svg)
        with atomic_path(Path(figures_dir) / f"{figure.name}.png") as tmp:
            tmp.write_bytes(png)
        built.append((figure, spec))
    return built


def build_report(paths: dict[str, str | os.PathLike | None], html_path: str | os.PathLike,
                 figures_dir: str | os.PathLike, config: dict[str, Any] | None = None,
                 models: dict[str, str] | None = None, settings: dict[str, Any] | None = None) -> list[str]:
    """Write the report page and its figures; returns the notes about missing pieces."""
    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    config = config or {}
    data = load_report_data(paths, dict(models or {}))
    style = Style(width=int(settings["width"]), height=int(settings["height"]), labels=data.labels)
    figures = render_figures(data, style, figures_dir)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.notes) or "<li>Nothing missing.</li>"
    sections = [
        f'<h2>Summary</h2>\n{html_table(headline_table(data), "headline")}',
        f'<h2>Missing pieces</h2>\n<ul class="notes" id="missing">{notes}</ul>',
        "<h2>Charts</h2>\n" + "\n".join(chart_block(f.name, f.heading, f.caption, spec) for f, spec in figures),
        f'<h2>Accuracy per task</h2>\n{html_table(task_table(data), "tasks")}',
        "<h2>Scaling exponents</h2>\n<p>Slope of log(latency) against log(sequence length), least squares over "
        "the profiled lengths: about 1 is linear, 2 quadratic; for decode (latency per token) about 0 means a "
        f'constant cost per token.</p>\n{html_table(slopes_table(data), "slopes")}',
        '<h2>Configuration</h2>\n<pre class="config" id="config">'
        f'{html.escape(config_yaml(config))}</pre>',
    ]
    write_text(html_path, page(str(settings["title"]), bool(config.get("demo", False)), sections))
    return data.notes
