"""The report's Altair charts. Each builder returns a chart, or a placeholder saying what is missing.

Every chart shares two things so the page can treat them as one figure set: the colour scale of the models
(:meth:`Style.model_color`, same domain and colours everywhere) and a variable parameter ``highlight``
(:data:`HIGHLIGHT`, a model label or null) that dims every other model. The page sets ``highlight`` in all
charts at once when a model is picked, so one selection highlights a model across the whole report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import altair as alt
import pandas as pd

from kernels.report.tables import (INTERVAL_NAME, INTERVAL_SHORT, ReportData, aggregate_seeds, baseline_model,
                                   crossover_lengths, dominators, largest_common_point, pareto_flags, per_model_mean,
                                   score_scope, set_names, totals, with_labels)

# Tableau 10: distinguishable, colour-blind friendlier than the default ordinal schemes; for more models
# (a zoo run) Tableau 20's lighter shades follow, so up to 20 models keep colours of their own.
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#8cd17d", "#b6992d", "#f1ce63", "#86bcb6",
           "#d4a6c8", "#d7b5a6", "#79706e"]
HIGHLIGHT = "highlight"
DIMMED_OPACITY = 0.15
LEVEL_ORDER = ["all levels", "word", "sentence", "human"]
MODE_ORDER = ["train", "prefill", "decode"]


@dataclass(frozen=True)
class Style:
    width: int
    height: int
    labels: dict[str, str]  # model name -> label, in display order

    @property
    def domain(self) -> list[str]:
        return list(dict.fromkeys(self.labels.values()))

    def colours(self) -> list[str]:
        return [PALETTE[i % len(PALETTE)] for i in range(len(self.domain))]

    def model_color(self, title: str = "Model") -> alt.Color:
        # One fixed domain for every chart, so a model keeps its colour even where others are absent.
        return alt.Color("label:N", title=title, scale=alt.Scale(domain=self.domain, range=self.colours()),
                         sort=self.domain)

    def highlight_opacity(self, full: float = 1.0) -> alt.Opacity:
        """Full opacity for the highlighted model (or every model when none is), dimmed for the others."""
        return alt.condition(f"{HIGHLIGHT} == null || datum.label == {HIGHLIGHT}", alt.value(full),
                             alt.value(DIMMED_OPACITY))


def placeholder(message: str, style: Style) -> alt.Chart:
    frame = pd.DataFrame({"message": [message]})
    return alt.Chart(frame).mark_text(fontSize=14, color="#777").encode(
        text="message:N", tooltip=alt.Tooltip("message:N", title="missing")).properties(width=style.width, height=80)


def _ci_tooltip(value_title: str, fmt: str = ".3f") -> list:
    return [alt.Tooltip("label:N", title="model"), alt.Tooltip("value:Q", title=value_title, format=fmt),
            alt.Tooltip("ci_low:Q", title="95% CI low", format=fmt),
            alt.Tooltip("ci_high:Q", title="95% CI high", format=fmt), alt.Tooltip("seeds:Q", title="seeds")]


def _bars_with_ci(frame: pd.DataFrame, style: Style, x: str, x_title: str, value_title: str, title: str,
                  y_domain: tuple[float, float] | None = None, x_sort: list[str] | None = None,
                  extra_tooltip: list | None = None) -> alt.LayerChart:
    """Grouped bars (one per model within each ``x`` group), with a 95% CI whisker where one exists."""
    if "seeds" not in frame.columns:
        frame = frame.assign(seeds=pd.NA)
    base = alt.Chart(frame).encode(
        x=alt.X(f"{x}:N", title=x_title, sort=x_sort, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("label:N", sort=style.domain),
        opacity=style.highlight_opacity(),
        tooltip=[alt.Tooltip(f"{x}:N", title=x_title)] + _ci_tooltip(value_title) + (extra_tooltip or []))
    scale = alt.Scale(domain=list(y_domain)) if y_domain else alt.Scale()
    layers = [base.mark_bar().encode(y=alt.Y("value:Q", title=value_title, scale=scale), color=style.model_color())]
    if frame["ci_low"].notna().any():
        layers.append(base.mark_rule(color="#222", strokeWidth=1.5).encode(y="ci_low:Q", y2="ci_high:Q"))
    return alt.layer(*layers).properties(width=style.width, height=style.height, title=title)


def glue_accuracy(data: ReportData, style: Style) -> alt.Chart:
    frame = totals(data.get("metrics"), "accuracy", ("glue",))
    if frame.empty:
        return placeholder("no GLUE accuracy in metrics.csv", style)
    frame = with_labels(frame, style.labels)
    # MNLI has two validation splits: name them, other tasks are just the task.
    frame["set"] = frame["task"].where(frame.groupby("task")["split"].transform("nunique") <= 1,
                                       frame["task"] + " " + frame["split"].astype(str))
    return _bars_with_ci(frame, style, "set", "GLUE task", "accuracy", f"GLUE validation accuracy ({INTERVAL_SHORT})",
                         y_domain=(0.0, 1.0))


def glue_vs_advglue(data: ReportData, style: Style) -> alt.Chart:
    frame = totals(data.get("metrics"), "accuracy", ("glue", "advglue"))
    if frame.empty:
        return placeholder("no GLUE or AdvGLUE accuracy in metrics.csv", style)
    frame = with_labels(frame, style.labels)
    frame["set"] = set_names(frame)
    base = alt.Chart().encode(
        y=alt.Y("label:N", title=None, sort=style.domain),
        yOffset=alt.YOffset("set:N"),
        opacity=style.highlight_opacity(),
        tooltip=[alt.Tooltip("task:N"), alt.Tooltip("set:N", title="evaluation set")] + _ci_tooltip("accuracy"),
    )
    rules = base.mark_rule(strokeWidth=2).encode(x=alt.X("ci_low:Q", title="accuracy"), x2="ci_high:Q",
                                                 color=style.model_color())
    points = base.mark_point(filled=True, size=80).encode(
        x=alt.X("value:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
        color=style.model_color(), shape=alt.Shape("set:N", title="Evaluation set"))
    return alt.layer(rules, points, data=frame).properties(
        width=max(150, style.width * 2 // 5), height=max(90, 34 * len(style.domain))).facet(
        column=alt.Column("task:N", title="task")).properties(
        title=f"Clean GLUE validation vs adversarial AdvGLUE accuracy ({INTERVAL_SHORT})")


def advglue_levels(data: ReportData, style: Style) -> alt.Chart:
    """AdvGLUE accuracy per task and perturbation level (word, sentence, human-crafted), with 95% CIs."""
    metrics = data.get("metrics")
    if metrics is None:
        return placeholder("no AdvGLUE accuracy by level in metrics.csv", style)
    rows = metrics[(metrics["dataset"] == "advglue") & (metrics["metric"] == "accuracy")
                   & (metrics["method"].astype(str) == "all")]
    if rows.empty:
        return placeholder("no AdvGLUE accuracy by level in metrics.csv (AdvGLUE not evaluated?)", style)
    frame = aggregate_seeds(rows.assign(level=rows["level"].astype(str)), ["model", "task", "split", "level"])
    frame[["ci_low", "ci_high"]] = frame[["ci_low", "ci_high"]].clip(0.0, 1.0)
    frame["level"] = frame["level"].replace({"all": "all levels"})
    frame["set"] = frame["split"].astype(str)
    frame = with_labels(frame, style.labels)
    n = rows.groupby(["model", "split", "level"])["n"].max().rename("items").reset_index()
    n["level"] = n["level"].astype(str).replace({"all": "all levels"})
    frame = frame.merge(n, on=["model", "split", "level"], how="left")
    base = alt.Chart().encode(
        x=alt.X("level:N", title="perturbation level", sort=LEVEL_ORDER, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("label:N", sort=style.domain),
        opacity=style.highlight_opacity(),
        tooltip=[alt.Tooltip("set:N", title="AdvGLUE set"), alt.Tooltip("level:N")] + _ci_tooltip("accuracy")
        + [alt.Tooltip("items:Q", title="items")])
    rules = base.mark_rule(strokeWidth=2).encode(y=alt.Y("ci_low:Q", title="AdvGLUE accuracy"), y2="ci_high:Q",
                                                 color=style.model_color())
    points = base.mark_point(filled=True, size=70).encode(
        y=alt.Y("value:Q", title="AdvGLUE accuracy", scale=alt.Scale(domain=[0, 1])), color=style.model_color())
    return alt.layer(rules, points, data=frame).properties(
        width=max(180, style.width // 2), height=style.height).facet(
        column=alt.Column("set:N", title="AdvGLUE set")).properties(
        title=f"AdvGLUE accuracy by perturbation level ({INTERVAL_SHORT})").resolve_scale(
        x="independent", xOffset="independent")  # each set shows only the levels it has


def robustness_drop(data: ReportData, style: Style) -> alt.Chart:
    frame = totals(data.get("metrics"), "robustness_drop", ("advglue",))
    if frame.empty:
        return placeholder("no paired robustness_drop rows in metrics.csv (no AdvGLUE item with a clean original?)",
                           style)
    frame = with_labels(frame, style.labels)
    return _bars_with_ci(frame, style, "split", "AdvGLUE set", "accuracy drop (clean original − adversarial)",
                         f"Robustness drop, paired: same items clean vs attacked ({INTERVAL_SHORT})")


def attack_success_rate(data: ReportData, style: Style) -> alt.Chart:
    frame = totals(data.get("metrics"), "attack_success_rate", ("advglue",))
    if frame.empty:
        return placeholder("no attack_success_rate rows in metrics.csv (no AdvGLUE item with a clean original?)",
                           style)
    frame = with_labels(frame, style.labels)
    frame = frame.rename(columns={"n_max": "attacked", "skipped_max": "skipped"})
    return _bars_with_ci(frame, style, "split", "AdvGLUE set", "attack success rate",
                         f"Attack success rate over items whose clean original is right ({INTERVAL_SHORT})",
                         y_domain=(0.0, 1.0), extra_tooltip=[alt.Tooltip("attacked:Q", title="items attacked"),
                                                             alt.Tooltip("skipped:Q", title="skipped")])


def advglue_scores(data: ReportData, style: Style) -> alt.Chart:
    scores = data.get("scores")
    if scores is None:
        return placeholder("no AdvGLUE official scores (advglue_scores.csv)", style)
    frame = aggregate_seeds(scores.rename(columns={"score": "value"}).assign(ci_low=float("nan"),
                                                                             ci_high=float("nan")),
                            ["model", "task"])
    if frame["seeds"].max() <= 1:
        frame[["ci_low", "ci_high"]] = float("nan")  # one seed: the official score has no interval
    frame = with_labels(frame, style.labels)
    order = sorted(t for t in frame["task"].unique() if t != "overall") + ["overall"]
    return _bars_with_ci(frame, style, "task", "AdvGLUE task", "AdvGLUE score",
                         f"AdvGLUE score per task and overall (overall: {score_scope(scores)})", y_domain=(0.0, 1.0),
                         x_sort=order)


def _efficiency_rows(data: ReportData) -> pd.DataFrame | None:
    efficiency = data.get("efficiency")
    if efficiency is None:
        return None
    rows = efficiency[efficiency["median_ms"].notna()]
    if "status" in rows.columns:
        rows = rows[rows["status"] == "ok"]
    return rows if not rows.empty else None


def _per_mode_lines(frame: pd.DataFrame, style: Style, y: str, y_title: str, y_log: bool,
                    title: str | alt.TitleParams, extra_tooltip: list,
                    marks: pd.DataFrame | None = None) -> alt.FacetChart:
    """One panel per mode, a line per model (and batch size); ``marks`` (mode, label, seq_len, text) adds a
    dashed vertical rule per row in the model's colour, e.g. where it becomes faster than the baseline."""
    frame = frame.copy()
    frame["batch"] = "batch " + frame["batch_size"].astype(str)
    frame["kind"] = "point"
    y_scale = alt.Scale(type="log") if y_log else alt.Scale()
    # Dashes tell batch sizes apart; with a single batch size they would only add a useless legend.
    dashes = ({"strokeDash": alt.StrokeDash("batch:N", title="batch size")}
              if frame["batch_size"].nunique() > 1 else {})
    # Slanted labels: on a log2 axis the longest lengths (2,048, 4,096) would run into each other.
    x = alt.X("seq_len:Q", title="sequence length (tokens)", scale=alt.Scale(type="log", base=2),
              axis=alt.Axis(values=sorted(frame["seq_len"].unique().tolist()), labelAngle=-40))
    lines = alt.Chart().mark_line(point=True).encode(
        x=x, y=alt.Y(f"{y}:Q", title=y_title, scale=y_scale),
        color=style.model_color(), opacity=style.highlight_opacity(), **dashes,
        tooltip=[alt.Tooltip("label:N", title="model"), "mode:N", alt.Tooltip("batch_size:Q", title="batch size"),
                 alt.Tooltip("seq_len:Q", title="sequence length")] + extra_tooltip,
    ).transform_filter("datum.kind == 'point'")
    layers = [lines]
    if marks is not None and not marks.empty:
        frame = pd.concat([frame, marks.assign(kind="mark")], ignore_index=True)
        layers.append(alt.Chart().mark_rule(strokeDash=[5, 3], strokeWidth=2).encode(
            x=x, color=style.model_color(), opacity=style.highlight_opacity(),
            tooltip=[alt.Tooltip("text:N", title="crossover")]).transform_filter("datum.kind == 'mark'"))
    chart = alt.layer(*layers, data=frame).properties(width=max(180, style.width // 2 + 20), height=style.height)
    modes = [m for m in MODE_ORDER if m in set(frame["mode"])]
    return chart.facet(column=alt.Column("mode:N", title=None, sort=modes,
                                         header=alt.Header(labelFontSize=13, labelFontWeight="bold")),
                       title=title).resolve_scale(y="independent")


def crossover_marks(data: ReportData, style: Style, quantity: str) -> pd.DataFrame:
    """Rule positions for :func:`_per_mode_lines`: per mode, the length from which each model is ``quantity``
    (faster / lighter) than the baseline at every longer profiled length."""
    baseline = baseline_model(data)
    found = crossover_lengths(data.get("efficiency"), baseline)
    found = found[(found["quantity"] == quantity) & found["from_len"].notna()]
    if found.empty:
        return pd.DataFrame(columns=["mode", "label", "seq_len", "text"])
    base_label = style.labels.get(baseline, baseline)
    labels = found["model"].map(lambda m: style.labels.get(m, m))
    return pd.DataFrame({
        "mode": found["mode"].to_numpy(), "label": labels.to_numpy(), "seq_len": found["from_len"].to_numpy(),
        "text": [f"{label} {quantity} than {base_label} from {int(length):,} tokens"
                 for label, length in zip(labels, found["from_len"])]})


def efficiency_scaling(data: ReportData, style: Style) -> alt.Chart:
    rows = _efficiency_rows(data)
    if rows is None:
        return placeholder("no efficiency measurements (efficiency.csv)", style)
    frame = with_labels(rows, style.labels)
    return _per_mode_lines(
        frame, style, "median_ms", "median latency (ms; decode: ms per token)", True,
        alt.TitleParams("Latency vs sequence length (log-log): train step, prefill, decode per token",
                        subtitle="dashed: from this length on the model is faster than the baseline at every "
                                 "longer profiled length, beyond the p10-p90 spread"),
        [alt.Tooltip("median_ms:Q", title="median ms", format=".2f"),
         alt.Tooltip("p10_ms:Q", title="p10 ms", format=".2f"), alt.Tooltip("p90_ms:Q", title="p90 ms", format=".2f"),
         alt.Tooltip("repeats:Q", title="timed repeats"),
         alt.Tooltip("tokens_per_s:Q", title="tokens/s", format=",.0f")],
        marks=crossover_marks(data, style, "faster"))


def memory_scaling(data: ReportData, style: Style) -> alt.Chart:
    rows = _efficiency_rows(data)
    if rows is None or rows["peak_mem_mb"].notna().sum() == 0:
        return placeholder("no peak memory measurements (efficiency.csv)", style)
    frame = with_labels(rows[rows["peak_mem_mb"].notna()], style.labels)
    return _per_mode_lines(frame, style, "peak_mem_mb", "peak memory (MiB; CPU: from tensors)", False,
                           alt.TitleParams("Peak memory growth vs sequence length",
                                           subtitle="dashed: from this length on the model needs less memory than "
                                                    "the baseline at every longer profiled length"),
                           [alt.Tooltip("peak_mem_mb:Q", title="peak MiB", format=".1f")],
                           marks=crossover_marks(data, style, "lighter"))


def decode_state(data: ReportData, style: Style) -> alt.Chart:
    rows = _efficiency_rows(data)
    if rows is None or "state_mb" not in rows.columns or not (rows["state_mb"] > 0).any():
        return placeholder("no decode state sizes (efficiency.csv, mode decode)", style)
    frame = with_labels(rows[(rows["mode"] == "decode") & (rows["state_mb"] > 0)], style.labels)
    frame = frame.drop_duplicates(["model", "seq_len"])
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("seq_len:Q", title="context length (tokens)", scale=alt.Scale(type="log", base=2),
                axis=alt.Axis(values=sorted(frame["seq_len"].unique().tolist()))),
        y=alt.Y("state_mb:Q", title="decode state per sequence (MiB)", scale=alt.Scale(type="log")),
        color=style.model_color(), opacity=style.highlight_opacity(),
        tooltip=[alt.Tooltip("label:N", title="model"), alt.Tooltip("seq_len:Q", title="context length"),
                 alt.Tooltip("state_mb:Q", title="state MiB", format=".4f")],
    ).properties(width=style.width, height=style.height,
                 title="Decode state (KV cache or recurrent state) vs context length")


def _gflops_range(values: pd.Series) -> str:
    low, high = values.min(), values.max()
    return f"{low:,.0f}" if round(low) == round(high) else f"{low:,.0f}–{high:,.0f}"


def peak_description(rows: pd.DataFrame) -> str:
    """The matmul peak behind the MFU, e.g. ``202 GFLOP/s (cpu, float32)``: the common denominator
    (``mfu_peak_gflops``, kernels.profiling.tables.with_common_peak) with the range the profile jobs measured,
    or, for tables without it, the jobs' own peaks."""
    common = rows["mfu_peak_gflops"].dropna() if "mfu_peak_gflops" in rows.columns else pd.Series(dtype=float)
    measured = rows["peak_gflops"].dropna() if "peak_gflops" in rows.columns else pd.Series(dtype=float)
    if common.empty and measured.empty:
        return "peak not measured"
    where = ", ".join(str(v) for c in ("device", "dtype") if c in rows.columns
                      for v in rows[c].dropna().astype(str).unique())
    where = f" ({where})" if where else ""
    if common.empty:
        return f"{_gflops_range(measured)} GFLOP/s{where}, each model against its own job's measurement"
    jobs = rows.drop_duplicates("model")["peak_gflops"].dropna() if "model" in rows.columns else measured
    return (f"{_gflops_range(common)} GFLOP/s{where}, the same for every model: the highest of the profile jobs' "
            f"measurements ({_gflops_range(jobs)} GFLOP/s, {len(jobs)} job(s))")


def mfu_scaling(data: ReportData, style: Style) -> alt.Chart:
    rows = _efficiency_rows(data)
    if rows is None or "mfu" not in rows.columns or rows["mfu"].notna().sum() == 0:
        return placeholder("no MFU in efficiency.csv (profiled before MFU was measured?)", style)
    rows = rows[rows["mfu"].notna()]
    peak = "mfu_peak_gflops" if "mfu_peak_gflops" in rows.columns else "peak_gflops"
    frame = with_labels(rows.assign(mfu_percent=100 * rows["mfu"]), style.labels)
    title = alt.TitleParams(
        "Model FLOPs utilisation (MFU) vs sequence length",
        subtitle=f"achieved matrix-product GFLOP/s over the measured dense matmul peak: {peak_description(rows)}")
    return _per_mode_lines(frame, style, "mfu_percent", "MFU (% of measured peak)", False, title,
                           [alt.Tooltip("mfu_percent:Q", title="MFU %", format=".2f"),
                            alt.Tooltip("achieved_gflops:Q", title="achieved GFLOP/s", format=".2f"),
                            alt.Tooltip(f"{peak}:Q", title="MFU denominator GFLOP/s", format=".1f")])


PARETO_LABELS = {True: "Pareto-optimal", False: "dominated"}


def tradeoff_points(data: ReportData) -> tuple[pd.DataFrame, str]:
    """Per model: throughput at the largest common length, mean GLUE and AdvGLUE accuracy, Pareto flag.

    The Pareto front is over every objective the data has for all models (throughput, GLUE accuracy, and
    AdvGLUE accuracy when every model has it), all maximised."""
    glue = per_model_mean(totals(data.get("metrics"), "accuracy", ("glue",)))
    advglue = per_model_mean(totals(data.get("metrics"), "accuracy", ("advglue",)))
    mode = "train"
    speed = largest_common_point(data.get("efficiency"), mode)
    if speed.empty:
        mode = "prefill"
        speed = largest_common_point(data.get("efficiency"), mode)
    if speed.empty or glue.empty:
        return pd.DataFrame(), ""
    length = int(speed["seq_len"].iloc[0])
    frame = speed.groupby("model")["tokens_per_s"].mean().rename("tokens_per_s").to_frame()
    frame = frame.join(glue.rename("glue_acc"), how="inner").join(advglue.rename("advglue_acc"), how="left")
    if frame.empty:
        return pd.DataFrame(), ""
    objectives = ["tokens_per_s", "glue_acc"] + (["advglue_acc"] if frame["advglue_acc"].notna().all() else [])
    frame["pareto"] = pareto_flags(frame, objectives).map(PARETO_LABELS)
    frame["dominated_by"] = dominators(frame, objectives)
    frame.index.name = "model"
    return frame.reset_index(), f"{mode} throughput (tokens/s) at sequence length {length}"


def _tradeoff_panel(frame: pd.DataFrame, style: Style, y: str, y_title: str, x_title: str) -> alt.LayerChart:
    base = alt.Chart(frame).encode(
        x=alt.X("tokens_per_s:Q", title=x_title, scale=alt.Scale(zero=False, padding=40)),
        y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(zero=False, padding=30)),
        opacity=style.highlight_opacity(),
        tooltip=[alt.Tooltip("label:N", title="model"), alt.Tooltip("tokens_per_s:Q", title="tokens/s", format=",.0f"),
                 alt.Tooltip("glue_acc:Q", title="mean GLUE accuracy", format=".3f"),
                 alt.Tooltip("advglue_acc:Q", title="mean AdvGLUE accuracy", format=".3f"),
                 alt.Tooltip("pareto:N", title="Pareto front")])
    points = base.mark_point(filled=True, size=260, stroke="#222", strokeWidth=1).encode(
        color=style.model_color(),
        shape=alt.Shape("pareto:N", title="Pareto front (all objectives)", scale=alt.Scale(
            domain=list(PARETO_LABELS.values()), range=["diamond", "circle"])))
    names = base.mark_text(dy=-18, fontSize=12).encode(text="label:N")
    return alt.layer(points, names).properties(width=style.width, height=style.height)


def tradeoff(data: ReportData, style: Style) -> alt.Chart:
    frame, x_title = tradeoff_points(data)
    if frame.empty:
        return placeholder("needs both GLUE accuracy and efficiency measurements of the same models", style)
    frame = with_labels(frame, style.labels)
    panels = [_tradeoff_panel(frame, style, "glue_acc", "mean GLUE accuracy (performance)", x_title)]
    if frame["advglue_acc"].notna().all():
        panels.append(_tradeoff_panel(frame, style, "advglue_acc", "mean AdvGLUE accuracy (robustness)", x_title))
        title = "Efficiency vs performance and robustness (◆ = Pareto-optimal on all three)"
    else:
        title = "Efficiency vs performance (◆ = Pareto-optimal; no AdvGLUE accuracy for every model)"
    return alt.hconcat(*panels).properties(title=title)


@dataclass(frozen=True)
class Figure:
    name: str
    section: str  # id of the page section the chart belongs to
    heading: str
    caption: str
    build: Callable[[ReportData, Style], alt.TopLevelMixin]


FIGURE_LIST = [
    Figure("glue_accuracy", "performance", "GLUE accuracy",
           f"Accuracy on each task's GLUE validation set. Error bars: {INTERVAL_NAME}.", glue_accuracy),
    Figure("glue_vs_advglue", "robustness", "Clean vs adversarial accuracy",
           f"Accuracy per model and task on the clean GLUE validation set and on AdvGLUE. Bars: {INTERVAL_NAME}.",
           glue_vs_advglue),
    Figure("advglue_scores", "robustness", "AdvGLUE score",
           "The AdvGLUE benchmark score as the authors' evaluate.py computes it (mean over seeds), per task "
           "and overall. The overall score is the official one only when all five tasks (SST-2, QQP, MNLI, QNLI, "
           "RTE) are evaluated; otherwise it is the mean over the evaluated tasks, which the title names.",
           advglue_scores),
    Figure("advglue_levels", "robustness", "AdvGLUE accuracy by perturbation level",
           "AdvGLUE accuracy per set and perturbation level: word-level attacks, sentence-level attacks, "
           f"human-crafted examples (not every set has each level), and all levels together ({INTERVAL_NAME}; "
           "hover a point for the item count).",
           advglue_levels),
    Figure("attack_success_rate", "robustness", "Attack success rate",
           "TextAttack's definition: among the AdvGLUE items whose clean original the model classifies correctly "
           "(the attacked items; items whose original it gets wrong are skipped), the share whose adversarial "
           f"version it gets wrong (whole set, all levels; lower is more robust; hover for the counts). {INTERVAL_NAME}.",
           attack_success_rate),
    Figure("robustness_drop", "robustness", "Robustness drop",
           "Paired: accuracy on the clean originals minus accuracy on their adversarial versions, the same "
           "word- and sentence-level items, per model and AdvGLUE set (higher is less robust). The unpaired drop "
           f"(GLUE validation minus AdvGLUE) is in the robustness table. {INTERVAL_NAME}.", robustness_drop),
    Figure("efficiency_scaling", "efficiency", "Latency vs sequence length",
           "Median latency per training step (the fine-tuning recipe), per prefill, and per decoded token (LM "
           "head included), over the profiled sequence lengths (log-log; y axes independent per mode). A dashed "
           "rule marks the length from which a model is faster than the crossover baseline (report.baseline; the "
           "Transformer++ by default) at every longer length, its p90 below the baseline's p10 (the crossover, "
           "stated per mode in the table below). Hover for p10/p90, repeats and tokens/s.",
           efficiency_scaling),
    Figure("memory_scaling", "efficiency", "Peak memory vs sequence length",
           "Peak memory of one training step / prefill over what existed before it (weights; on CPU measured from "
           "tensors: the most bytes of the tensors the step creates alive at once; on CUDA the allocator's peak); "
           "decode: the state carried between tokens plus the decode steps' tensors (the prefill's activations "
           "excluded). The resident-set growth is in efficiency.csv (rss_peak_mb), for reference. A dashed rule "
           "marks where a model becomes lighter than the crossover baseline for good.",
           memory_scaling),
    Figure("mfu", "efficiency", "Model FLOPs utilisation",
           "Matrix-product FLOPs per token (analytic, kernels.profiling.flops, where the family has a formula: a "
           "training token counts 3x its forward, a decoded token includes the LM head; otherwise counted by "
           "torch's FlopCounterMode over the timed step, backward included, which sees no triton kernel: see the "
           "implementation table) times tokens/s, over one dense matmul peak for every model: the highest that "
           "the profile jobs measured on the same device, dtype and threads before their points. Norms, "
           "activations, the optimizer and overhead earn no FLOPs, so they lower the MFU.",
           mfu_scaling),
    Figure("decode_state", "efficiency", "Decode state size",
           "Bytes carried between decoding steps per sequence: a KV cache grows with the context, a "
           "recurrent state does not.", decode_state),
    Figure("tradeoff", "tradeoff", "Efficiency, performance and robustness",
           "Throughput against mean GLUE accuracy (left) and mean AdvGLUE accuracy (right). Diamonds mark "
           "Pareto-optimal models: no other model is at least as good on every objective and better on one.",
           tradeoff),
]
FIGURES = [figure.name for figure in FIGURE_LIST]


def build_figure(figure: Figure, data: ReportData, style: Style) -> dict:
    """The Vega-Lite spec of ``figure`` with the shared ``highlight`` parameter declared at its top level."""
    return figure.build(data, style).add_params(alt.param(name=HIGHLIGHT, value=None)).to_dict()
