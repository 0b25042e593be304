"""Assemble the report: tables and notes, every chart embedded in one offline page and saved as SVG/PNG."""

from __future__ import annotations

import html
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import vl_convert
import yaml

from kernels.io import atomic_path, write_text
from kernels.report.attacks import attack_section
from kernels.report.charts import FIGURE_LIST, Figure, Style, build_figure, tradeoff_points
from kernels.report.claims import (ACCURACY_COLUMNS, ROBUSTNESS_COLUMNS, Verdict, column_verdicts, flagged_tasks,
                                   mean_components, pairwise_noise, single_class_note, single_class_sets)
from kernels.profiling.slopes import RELIABLE_MAX_SE, RELIABLE_MIN_POINTS, is_reliable
from kernels.report.implementations import IMPLEMENTATION_HINT, implementation_table
from kernels.report.html_tables import html_table
from kernels.report.efficiency_tables import (crossover_statements, crossover_table, mfu_peak, mfu_table,
                                              throughput_table)
from kernels.report.page import Section, chart_block, page, vegalite_version
from kernels.report.robustness import estimate_cell, method_table, robustness_table
from kernels.report.significance import ALPHA, headline_summary, significance_table, summary_block
from kernels.report.setup import data_table, hardware_table, models_table, versions_table
from kernels.report.tables import (CROSSOVER_RULE, INTERVAL_NAME, ReportData, largest_common_point, model_order,
                                   per_model_mean, read_table, score_scope, set_names, totals, train_counts)

INPUT_TABLES = ("metrics", "scores", "throughput", "efficiency", "slopes", "significance", "robustness_significance")
DEFAULT_SETTINGS = {"title": "Efficiency, performance and robustness of efficient LLM architectures",
                    "width": 420, "height": 260}


def load_report_data(paths: dict[str, str | os.PathLike | None], labels: dict[str, str],
                     train_data: list[str | os.PathLike] | None = None) -> ReportData:
    """Read every input table; absent tables become notes. ``paths`` keys: metrics, scores, throughput,
    efficiency, slopes, significance; ``train_data``: the tasks' training parquet files (for their counts)."""
    notes: list[str] = []
    tables = {name: read_table(name, paths.get(name), notes) for name in INPUT_TABLES}
    data = ReportData(tables=tables, labels=model_order(labels, tables), notes=notes,
                      train_counts=train_counts(train_data))
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
    if efficiency is not None and ("mfu" not in efficiency.columns or efficiency["mfu"].notna().sum() == 0):
        notes.append("efficiency.csv has no MFU values (profiled before MFU was measured?): the MFU chart and "
                     "table are left empty.")
    if data.get("significance") is None and metrics is not None and metrics["model"].nunique() < 2:
        notes.append("Only one model has results: there is no pairwise significance test.")
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
    # Parameter counts are in the setup section's model table, right above: the headline stays narrow.
    columns: dict[str, pd.Series] = {}
    columns["GLUE accuracy"] = per_model_mean(totals(metrics, "accuracy", ("glue",)))
    columns["AdvGLUE accuracy"] = per_model_mean(totals(metrics, "accuracy", ("advglue",)))
    columns["Robustness drop (paired)"] = per_model_mean(totals(metrics, "robustness_drop", ("advglue",)))
    columns["Drop vs GLUE (unpaired)"] = per_model_mean(totals(metrics, "robustness_drop_unpaired", ("advglue",)))
    columns["Attack success rate"] = per_model_mean(totals(metrics, "attack_success_rate", ("advglue",)))
    scores = data.get("scores")
    if scores is not None:
        columns[f"AdvGLUE score ({score_scope(scores, short=True)})"] = scores[scores["task"] == "overall"].groupby(
            "model")["score"].mean()
    for mode, column, title in (("train", "tokens_per_s", "Train tokens/s"),
                                ("prefill", "median_ms", "Prefill ms"),
                                ("decode", "median_ms", "Decode ms/token"),
                                ("decode", "state_mb", "Decode state MiB/seq"),
                                ("train", "peak_mem_mb", "Train peak MiB"),
                                ("train", "mfu", "Train MFU")):
        values, length = _at_largest(efficiency, mode, column)
        if length is not None:
            columns[f"{title} @ {length}"] = values
    throughput = data.get("throughput")
    if throughput is not None:
        columns["Fine-tune tokens/s"] = throughput.groupby("model")["tokens_per_s_median"].median()
    table = pd.DataFrame(columns)
    table = table.reindex([m for m in data.labels if m in table.index])
    table.index = [data.labels[m] for m in table.index]
    table.index.name = "Model"
    return table.dropna(axis=1, how="all")


# The headline is two tables, so that each fits the page: what the models get right, and what they cost.
EFFICIENCY_PREFIXES = ("Train tokens/s", "Prefill ms", "Decode ms", "Decode state", "Train peak", "Train MFU",
                       "Fine-tune tokens/s")
SINGLE_CLASS_COLUMN = "Predicts one class for every item of"


def headline_marks(table: pd.DataFrame, verdicts: dict[str, Verdict], names: dict[str, str]
                   ) -> tuple[dict[str, dict[int, str]], dict[str, dict[int, str]]]:
    """Cell classes (best / tie / unranked, by row position) and hover texts of the headline table."""
    position = {names[label]: i for i, label in enumerate(table.index)}
    marks, titles = {}, {}
    for column, verdict in verdicts.items():
        cells = {position[m]: "best" for m in verdict.best if m in position}
        cells.update({position[m]: "tie" for m in verdict.tied if m in position})
        cells.update({position[m]: "unranked" for m in verdict.unranked if m in position})
        marks[column] = cells
        titles[column] = {i: verdict.text for i in cells}
    return marks, titles


def means_include(data: ReportData, table: pd.DataFrame, flags: pd.DataFrame) -> list[str]:
    """What each mean over tasks of the headline averages, and, for a model that predicts one class for a set
    a mean covers, that set's value (a 0.000 [0.000, 0.000] attack success rate is no robustness)."""
    metrics = data.get("metrics")
    lines = []
    for column in table.columns:
        prefix = next((p for p in (*ACCURACY_COLUMNS, *ROBUSTNESS_COLUMNS) if str(column).startswith(p)), None)
        if prefix is None or metrics is None:
            continue
        metric, dataset = {**ACCURACY_COLUMNS, **ROBUSTNESS_COLUMNS}[prefix]
        parts = mean_components(metrics, metric, dataset)
        if parts.empty:
            continue
        line = f"{column}: mean over {_covered_sets(parts, dataset)}"
        if str(column).startswith("AdvGLUE score") and "official" not in str(column):
            line += " (not the official AdvGLUE score, which needs all five tasks)"
        degenerate = []
        for model, own in parts.groupby("model", sort=False):
            tasks = flagged_tasks(flags, model, dataset)
            hit = own[own["task"].isin(tasks)]
            if len(hit):
                cells = "; ".join(f"{r.task} {estimate_cell(r.value, r.ci_low, r.ci_high)}" for r in hit.itertuples())
                degenerate.append(f"{data.labels.get(model, model)} ({cells}, one class predicted)")
        if degenerate:
            line += "; it includes " + ", ".join(degenerate)
        lines.append(line + ".")
    return lines


def _covered_sets(parts: pd.DataFrame, dataset: str) -> str:
    """e.g. ``GLUE validation of sst2, rte`` or ``AdvGLUE sets sst2, rte`` (each task once)."""
    if dataset == "glue":
        names = [t if parts[parts["task"] == t]["split"].nunique() == 1 else f"{t} {sp}"
                 for t, sp in zip(parts["task"], parts["split"])]
        return "GLUE validation of " + ", ".join(dict.fromkeys(names))
    return "AdvGLUE sets " + ", ".join(dict.fromkeys(str(sp) for sp in parts["split"]))


def headline_section(data: ReportData) -> str:
    """The headline numbers: two tables (performance and robustness; efficiency) whose best values are bold only
    where significantly better than every other model, tied values shaded (kernels.report.claims); models that
    predict one class for a whole set flagged; what the means include; how each column was decided."""
    table = headline_table(data)
    if table.empty:
        return html_table(table, "headline")
    names = {label: model for model, label in data.labels.items()}
    verdicts = column_verdicts(data, table, names)
    flags = single_class_sets(data.get("metrics"))
    quality = table[[c for c in table.columns if not str(c).startswith(EFFICIENCY_PREFIXES)]].copy()
    efficiency = table[[c for c in table.columns if str(c).startswith(EFFICIENCY_PREFIXES)]]
    notes = {label: single_class_note(flags, names[label]) for label in quality.index}
    if any(notes.values()):
        quality[SINGLE_CLASS_COLUMN] = [("⚠ " + notes[label]) if notes[label] else "–" for label in quality.index]
    parts = []
    for frame, table_id in ((quality, "headline"), (efficiency, "headline-efficiency")):
        if frame.shape[1]:
            marks, titles = headline_marks(frame, {c: v for c, v in verdicts.items() if c in frame.columns}, names)
            parts.append(html_table(frame, table_id, marks=marks or {frame.columns[0]: {}}, titles=titles))
    decided = "".join(f"<li><b>{html.escape(str(c))}</b>: {html.escape(v.text)}</li>" for c, v in verdicts.items())
    included = "".join(f"<li>{html.escape(line)}</li>" for line in means_include(data, quality, flags))
    return ("".join(parts)
            + (f'<details open><summary>What the means include</summary><ul class="hint" id="headline-means">'
               f"{included}</ul></details>" if included else "")
            + (f'<details><summary>How each column was decided</summary><ul class="hint" id="headline-verdicts">'
               f"{decided}</ul></details>" if decided else ""))


def task_table(data: ReportData) -> pd.DataFrame:
    """Accuracy [95% CI] per model x task (rows) and evaluation set (columns)."""
    frame = totals(data.get("metrics"), "accuracy", ("glue", "advglue"))
    if frame.empty:
        return frame
    frame = frame.assign(set=set_names(frame),
                         cell=[estimate_cell(v, lo, hi) for v, lo, hi in
                               zip(frame["value"], frame["ci_low"], frame["ci_high"])])
    table = frame.pivot_table(index=["model", "task"], columns="set", values="cell", aggfunc="first")
    table = table[sorted(table.columns, key=lambda name: (not str(name).startswith("GLUE"), str(name)))]
    order = {name: i for i, name in enumerate(data.labels)}
    table = table.sort_index(key=lambda level: level.map(order) if level.name == "model" else level)
    table = table.reset_index()
    table["model"] = table["model"].map(lambda m: data.labels.get(m, m))
    table.columns.name = None
    return table.rename(columns={"model": "Model", "task": "Task"})


def slopes_table(data: ReportData) -> pd.DataFrame:
    """Fitted scaling exponent per model (rows) and mode (columns), smallest batch size, each with the fit's r^2
    and number of lengths; fits below the reliability threshold (kernels.profiling.slopes) are flagged."""
    slopes = data.get("slopes")
    if slopes is None:
        return pd.DataFrame()
    slopes = slopes[slopes["batch_size"] == slopes["batch_size"].min()]
    modes = [m for m in ("train", "prefill", "decode") if m in set(slopes["mode"])]
    rows = []
    for model in [m for m in data.labels if m in set(slopes["model"])]:
        row = {"Model": data.labels[model]}
        for mode in modes:
            fit = slopes[(slopes["model"] == model) & (slopes["mode"] == mode)]
            row[mode] = "–" if fit.empty else slope_cell(fit.iloc[0])
        rows.append(row)
    return pd.DataFrame(rows).set_index("Model") if rows else pd.DataFrame()


def slope_cell(fit: pd.Series) -> str:
    """``1.02 ± 0.03 (r² 0.99, n 7)``, with ``unreliable`` appended below the threshold."""
    n = int(fit["n_points"]) if pd.notna(fit.get("n_points")) else 0
    se = float(fit["slope_se"]) if pd.notna(fit.get("slope_se")) else float("nan")
    spread = f" ± {se:.2f}" if pd.notna(se) else ""
    reliable = is_reliable(se, n)
    return f"{float(fit['slope']):.2f}{spread} (r² {float(fit['r2']):.2f}, n {n})" + ("" if reliable else " unreliable")


def config_yaml(config: dict[str, Any]) -> str:
    # Through JSON first: a config from Snakemake may hold types (paths, custom mappings) YAML cannot dump.
    plain = json.loads(json.dumps(config, default=str))
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)


def render_figures(data: ReportData, style: Style, figures_dir: str | os.PathLike) -> list[tuple[Figure, dict]]:
    """Build every chart, write ``{name}.svg`` and ``{name}.png``; returns (figure, spec) pairs."""
    version = vegalite_version()
    built = []
    for figure in FIGURE_LIST:
        spec = build_figure(figure, data, style)
        svg = vl_convert.vegalite_to_svg(spec, vl_version=version)
        png = vl_convert.vegalite_to_png(spec, vl_version=version, scale=2)
        write_text(Path(figures_dir) / f"{figure.name}.svg", svg)
        with atomic_path(Path(figures_dir) / f"{figure.name}.png") as tmp:
            tmp.write_bytes(png)
        built.append((figure, spec))
    return built


def _pareto_noise(data: ReportData, frame: pd.DataFrame, x_title: str) -> tuple[dict, dict[str, str]]:
    """(pairwise "better beyond the noise" per objective, objective -> its display name) of the trade-off."""
    objectives = {"tokens_per_s": f"{x_title.split()[0].capitalize()} tokens/s", "glue_acc": "GLUE accuracy"}
    if frame["advglue_acc"].notna().all():
        objectives["advglue_acc"] = "AdvGLUE accuracy"
    values = frame.set_index("model")
    return pairwise_noise(data, objectives, list(values.index), values), objectives


def pareto_table(data: ReportData) -> pd.DataFrame:
    """The trade-off chart's numbers: per model throughput, mean accuracies, whether it is Pareto-optimal on the
    means (and by which models it is dominated), and whether it is dominated beyond the noise: by a model that
    is better on some objective beyond the noise and worse on none beyond it (kernels.report.claims)."""
    frame, x_title = tradeoff_points(data)
    if frame.empty:
        return frame
    better, objectives = _pareto_noise(data, frame, x_title)
    beyond = {b: [a for a in frame["model"] if a != b and any(better[(a, b)].values())
                  and not any(better[(b, a)].values())] for b in frame["model"]}
    label = lambda m: data.labels.get(m, m)  # noqa: E731
    frame = frame.assign(beyond=frame["model"].map(lambda m: ", ".join(map(label, beyond[m])) or "–"),
                         model=frame["model"].map(label),
                         dominated_by=frame["dominated_by"].map(lambda names: ", ".join(map(label, names)) or "–"))
    frame = frame.rename(columns={"model": "Model", "tokens_per_s": x_title[:1].upper() + x_title[1:],
                                  "glue_acc": "Mean GLUE accuracy", "advglue_acc": "Mean AdvGLUE accuracy",
                                  "pareto": "Pareto front (means)", "dominated_by": "Dominated by (means)",
                                  "beyond": "Dominated beyond the noise by"})
    return frame.set_index("Model").reindex([label for label in data.labels.values()
                                             if label in set(frame["Model"])])


def pareto_noise_lines(data: ReportData) -> list[str]:
    """Per pair of models, which of the trade-off's differences are within the noise (not significant)."""
    frame, x_title = tradeoff_points(data)
    if frame.empty:
        return []
    better, objectives = _pareto_noise(data, frame, x_title)
    models, lines = [m for m in data.labels if m in set(frame["model"])], []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            within = [name for column, name in objectives.items()
                      if not better[(a, b)][column] and not better[(b, a)][column]]
            apart = [name for column, name in objectives.items() if name not in within]
            lines.append(f"{data.labels.get(a, a)} vs {data.labels.get(b, b)}: "
                         + (f"within the noise on {', '.join(within)}" if within else "no difference within the noise")
                         + (f"; beyond it on {', '.join(apart)}" if apart and within else ""))
    return lines


def _subsection(title: str, body: str) -> str:
    return f"<div><h3>{html.escape(title)}</h3>\n{body}</div>"


def versions_list(versions: pd.DataFrame) -> str:
    items = "".join(f"<li><b>{html.escape(p)}</b> {html.escape(v)}</li>" for p, v in versions.itertuples(index=False))
    return f'<ul class="versions" id="setup-versions">{items}</ul>'


def setup_section(data: ReportData, config: dict[str, Any]) -> str:
    source = (config.get("data") or {}).get("source", "–")
    seeds = ", ".join(str(s) for s in config.get("seeds") or []) or "–"
    data_note = (f'<p class="hint">Data source: <code>{html.escape(str(source))}</code>; seeds: {html.escape(seeds)}. '
                 "GLUE validation sets serve as test sets (GLUE test labels are not public); AdvGLUE is its dev "
                 "set.</p>")
    grid = "".join([
        _subsection("Models", html_table(models_table(data, config), "setup-models")),
        _subsection("Data", html_table(data_table(data, config), "setup-data") + data_note),
        _subsection("Hardware", html_table(hardware_table(data, config), "setup-hardware")),
        _subsection("Software", versions_list(versions_table())),
    ])
    configuration = ('<details><summary>Configuration used (YAML)</summary>\n<pre class="config" id="config">'
                     f"{html.escape(config_yaml(config))}</pre></details>")
    return f'<div class="grid">{grid}</div>\n{configuration}'


def figure_blocks(figures: list[tuple[Figure, dict]], section: str, extra: str = "") -> str:
    """The section's charts (and ``extra`` content) side by side where the page is wide enough."""
    blocks = "\n".join(chart_block(f.name, f.heading, f.caption, spec) for f, spec in figures if f.section == section)
    return f'<div class="figures">{blocks}{extra}</div>'


SEEDS_HINT = (f"Intervals: {INTERVAL_NAME}. With several seeds a cell reads mean ± sd over seeds [interval]; "
              "with one seed value [interval].")


def robustness_block(data: ReportData) -> str:
    hint = ('<p class="hint">Per model, AdvGLUE set and perturbation level: the set\'s AdvGLUE task score (the '
            "official per-task metric; whole set), accuracy with its item count, the share of the set's items given "
            "the model's most frequent prediction (<b>⚠ one class</b>: it predicts one class for every item, so "
            "nothing it does changes under attack and its attack success rate and drops are 0 by construction, not "
            "robustness); the attack success rate as TextAttack defines it: among the items whose "
            "clean original the model gets right (attacked), the share whose adversarial version it gets wrong; "
            "items whose original it already gets wrong are skipped. The robustness drop is paired: accuracy on the "
            "clean originals minus accuracy on their adversarial versions, the same items; the unpaired drop (GLUE "
            "validation accuracy minus AdvGLUE accuracy) compares different item sets and is shown for reference. "
            f"{SEEDS_HINT} Human-crafted items have no original, so no attack success rate and no paired drop.</p>")
    method_hint = ('<p class="hint">AdvGLUE accuracy per attack method, always within its perturbation level '
                   "(CheckList and StressTest occur at both sentence and human level, so pooling them across levels "
                   f"would mix two kinds of perturbation). {SEEDS_HINT}</p>")
    return (f"<div><h3>Robustness per model</h3>\n{hint}\n"
            f"{html_table(robustness_table(data), 'robustness-table')}</div>\n"
            "<details><summary>AdvGLUE accuracy by perturbation level and attack method</summary>\n"
            f"{method_hint}\n{html_table(method_table(data), 'method-table')}</details>")


def significance_section(data: ReportData) -> str:
    if data.get("significance") is None:
        return ('<p id="significance-table">No pairwise significance results (they need the predictions of at '
                "least two models on the same items; see What is missing).</p>")
    hint = ('<p class="hint">Every pair of models on the same items of one task, evaluation set and seed (each seed '
            "is its own fine-tuning run); A − B is the accuracy difference. <i>b</i>: items model A gets right and "
            "B wrong, <i>c</i>: the reverse; the exact McNemar test (p) uses only these discordant items, p (Holm) "
            "corrects it for the model pairs compared on the same items. Verdict: significant when p (Holm) &lt; "
            f"{ALPHA}; greyed rows are <b>not significant</b>: <i>n.s.</i> (p ≥ {ALPHA}) or <i>n.s. after Holm</i> "
            "(only the uncorrected p is below it). Their differences are within noise.</p>")
    whole, whole_classes = significance_table(data, ("all",))
    levels = tuple(lv for lv in ("word", "sentence", "human") if lv in set(data.get("significance")["level"]))
    details = ""
    if levels:
        per_level, level_classes = significance_table(data, levels)
        details = ("<details><summary>Per AdvGLUE perturbation level</summary>\n"
                   + html_table(per_level, "significance-levels", row_classes=level_classes) + "</details>")
    return hint + html_table(whole, "significance-table", row_classes=whole_classes) + details


def efficiency_extras(data: ReportData) -> str:
    slopes_hint = ('<p class="hint">Slope of log(latency) against log(sequence length), least squares over the '
                   "profiled lengths: about 1 is linear, 2 quadratic; for decode (latency per token) about 0 means "
                   "a constant cost per token. Each with its standard error (±), the fit's r² and the number of "
                   f"lengths n; a fit with standard error &gt; {RELIABLE_MAX_SE} or n &lt; {RELIABLE_MIN_POINTS} is "
                   "marked <i>unreliable</i>: its slope is not a scaling exponent (noisy points, or a curve that is "
                   "no power law, e.g. a cliff where a kernel changes path). r² alone cannot decide: a flat curve "
                   "has r² near 0 however clean its points.</p>")
    crossover_hint = ('<p class="hint">Per mode, the sequence length from which each model is faster (median '
                      "latency) and lighter (peak memory) than the crossover baseline (report.baseline; the "
                      "Transformer++ by default) at every longer profiled length, on the profiling hardware above "
                      "(smallest batch size), counted only beyond the measurement "
                      f"noise: {html.escape(CROSSOVER_RULE)}. \"not ... up to\" when it is not so at the longest "
                      "length both ran. The latency and memory charts mark these lengths.</p>")
    statements = "".join(f"<li>{html.escape(s)}</li>" for s in crossover_statements(data))
    crossover = (crossover_hint + (f'<ul id="crossover-statements">{statements}</ul>' if statements else "")
                 + html_table(crossover_table(data), "crossover"))
    mfu_hint = ('<p class="hint">Model FLOPs utilisation per mode: median over the profiled sequence lengths (best '
                "length in brackets), against the dense matmul peak measured before profiling: "
                f"{html.escape(mfu_peak(data))}. One denominator for all models: the jobs ran one after another on "
                "the same machine, so their peaks differ only by noise, and the best rate seen is the best estimate "
                "of the peak.</p>")
    throughput_hint = ('<p class="hint">Measured during fine-tuning: median tokens/s over the logged training '
                       "steps, per task; with several seeds mean ± sd over seeds.</p>")
    return "".join([
        _subsection("Crossover: where the linear-time models overtake the baseline", crossover),
        _subsection("Implementations: which code produced each model's numbers",
                    IMPLEMENTATION_HINT + html_table(implementation_table(data), "implementations")),
        _subsection("Scaling exponents", slopes_hint + html_table(slopes_table(data), "slopes")),
        _subsection("MFU per model and mode", mfu_hint + html_table(mfu_table(data), "mfu-table")),
        _subsection("Fine-tuning throughput (tokens/s)", throughput_hint
                    + html_table(throughput_table(data), "finetune-throughput")),
    ])


def pareto_noise_block(data: ReportData) -> str:
    lines = pareto_noise_lines(data)
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return ('<p class="hint">The Pareto front above is on the means. Which differences are beyond the noise '
            "(accuracies: exact McNemar with Holm, on every task the mean covers; throughput: p10–p90 ranges apart, "
            "at least 5 timed repeats each; as in the headline):</p>"
            f'<ul class="hint" id="pareto-noise">{items}</ul>')


def report_sections(data: ReportData, config: dict[str, Any], figures: list[tuple[Figure, dict]]) -> list[Section]:
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.notes) or "<li>Nothing missing.</li>"
    headline_hint = ('<p class="hint">Means over tasks (and seeds), each task weighted once as in the official '
                     "AdvGLUE score: MNLI counts as the mean of its matched and mismatched sets. Robustness drop "
                     "(paired): clean originals minus their adversarial versions, the same items; attack success "
                     "rate: over the items whose clean original is right. ↑ higher is better, ↓ lower is better. "
                     "<b>Bold</b>: the best value, significantly better than every other model's; "
                     '<span class="tie-key">shaded</span>: tied for best (the best value and every model not '
                     "significantly worse than it); greyed: not ranked. Accuracies: exact McNemar test on the same "
                     "items, Holm-corrected over the model pairs; attack success rate and drops: paired "
                     "randomisation test, Holm likewise; a mean is significantly better only where every task, set "
                     f"and seed it covers is (p &lt; {ALPHA} after Holm, same direction). Latency, throughput and "
                     "MFU: p10–p90 ranges apart (at least 5 timed repeats each); decode state and memory measured "
                     "from tensors: exact sizes. A model that predicts one class for every item of a set is flagged "
                     "and not ranked on the robustness means covering it. Efficiency columns are taken at the "
                     "largest sequence length (after @) that every model reached.</p>")
    performance_extra = ("<div><h3>Accuracy per task and evaluation set [95% CI]</h3>\n"
                         + f'<p class="hint">{html.escape(SEEDS_HINT)}</p>'
                         + html_table(task_table(data), "tasks") + summary_block(data, ("glue",), "glue-significance")
                         + "</div>")
    return [
        Section("setup", "Setup", setup_section(data, config)),
        Section("headline", "Headline numbers", headline_hint + headline_summary(data) + headline_section(data)),
        Section("missing-pieces", "What is missing", f'<ul class="notes" id="missing">{notes}</ul>'),
        Section("performance", "Performance (GLUE)", figure_blocks(figures, "performance", performance_extra)),
        Section("robustness", "Robustness (AdvGLUE)", figure_blocks(
            figures, "robustness", summary_block(data, ("advglue",), "advglue-significance"))
                + robustness_block(data)),
        Section("significance", "Significance (pairwise)", significance_section(data)),
        Section("efficiency", "Efficiency (scaling)", figure_blocks(
            figures, "efficiency", f'<div class="grid compact">{efficiency_extras(data)}</div>')),
        Section("tradeoff", "Trade-off", figure_blocks(figures, "tradeoff")
                + "\n" + html_table(pareto_table(data), "pareto") + pareto_noise_block(data)),
    ]


def crossover_baseline(config: dict[str, Any]) -> str | None:
    """The model the crossover compares with: config ``report.baseline``, else the first Transformer++ model."""
    chosen = (config.get("report") or {}).get("baseline")
    if chosen:
        return chosen
    return next((name for name, entry in (config.get("models") or {}).items()
                 if isinstance(entry, dict) and entry.get("family") == "transformer_pp"), None)


def subtitle(config: dict[str, Any], data: ReportData) -> str:
    run = config.get("run_name", "unnamed run")
    tasks = ", ".join(config.get("tasks") or []) or "–"
    built = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Run {run}: {', '.join(data.labels.values()) or 'no models'} on {tasks}. Built {built}. "
            "Click a model (button above the charts, or any of its marks) to highlight it in every chart; hover "
            "for values.")


def build_report(paths: dict[str, str | os.PathLike | None], html_path: str | os.PathLike,
                 figures_dir: str | os.PathLike, config: dict[str, Any] | None = None,
                 models: dict[str, str] | None = None, settings: dict[str, Any] | None = None,
                 train_data: list[str | os.PathLike] | None = None,
                 attacks: dict[str, list] | None = None) -> list[str]:
    """Write the report page and its figures; returns the notes about missing pieces. ``train_data``: the
    tasks' ``train.parquet`` files, whose row counts the data table shows; ``attacks``: the attack stage's
    ``summaries`` ({recipe}.json, each beside its .jsonl) and ``transfer`` tables (kernels.report.attacks)."""
    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    config = config or {}
    data = load_report_data(paths, dict(models or {}), train_data)
    data.baseline = crossover_baseline(config)
    style = Style(width=int(settings["width"]), height=int(settings["height"]), labels=data.labels)
    figures = render_figures(data, style, figures_dir)
    sections = report_sections(data, config, figures)
    if attacks is not None:  # the workflow's attack stage ran (its charts: kernels.report.attacks.FIGURE_NAMES)
        fresh = Section("attacks", "Fresh attacks", attack_section(attacks.get("summaries", []),
                                                                    attacks.get("transfer", []), data.get("metrics"),
                                                                    style, figures_dir))
        sections.insert(next((i + 1 for i, s in enumerate(sections) if s.id == "robustness"), len(sections)), fresh)
    colours = dict(zip(style.domain, style.colours()))
    write_text(html_path, page(str(settings["title"]), bool(config.get("demo", False)), subtitle(config, data),
                               colours, sections))
    return data.notes
