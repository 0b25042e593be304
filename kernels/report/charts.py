"""The report's Altair charts. Each builder returns a chart, or a placeholder saying what is missing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import altair as alt
import pandas as pd

from kernels.report.tables import (ReportData, largest_common_point, pareto_flags, per_model_mean, set_names,
                                   totals, with_labels)

# Tableau 10: distinguishable, colour-blind friendlier than the default ordinal schemes.
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac"]


@dataclass(frozen=True)
class Style:
    width: int
    height: int
    labels: dict[str, str]  # model name -> label, in display order

    def model_color(self, title: str = "Model") -> alt.Color:
        # One fixed domain for every chart, so a model keeps its colour even where others are absent.
        domain = list(dict.fromkeys(self.labels.values()))
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(domain))]
        return alt.Color("label:N", title=title, scale=alt.Scale(domain=domain, range=colours))


def placeholder(message: str, style: Style) -> alt.Chart:
    frame = pd.DataFrame({"message": [message]})
    return alt.Chart(frame).mark_text(fontSize=14, color="#777").encode(text="message:N").properties(
        width=style.width, height=80)


def glue_vs_advglue(data: ReportData, style: Style) -> alt.Chart:
    frame = totals(data.get("metrics"), "accuracy", ("glue", "advglue"))
    if frame.empty:
        return placeholder("no GLUE or AdvGLUE accuracy in metrics.csv", style)
    frame = with_labels(frame, style.labels)
    frame["set"] = set_names(frame)
    base = alt.Chart().encode(
        y=alt.Y("label:N", title=None, sort=list(style.labels.values())),
        yOffset=alt.YOffset("set:N"),
    )
    tooltip = ["label:N", "task:N", "set:N", alt.Tooltip("value:Q", format=".3f"),
               alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f"), "seeds:Q"]
    rules = base.mark_rule().encode(x=alt.X("ci_low:Q", title="accuracy"), x2="ci_high:Q",
                                    color=style.model_color())
    points = base.mark_point(filled=True, size=70).encode(
        x=alt.X("value:Q", title="accuracy", scale=alt.Scale(zero=False)),
        color=style.model_color(), shape=alt.Shape("set:N", title="Evaluation set"), tooltip=tooltip)
    return alt.layer(rules, points, data=frame).properties(
        width=style.width // 2, height=max(60, 22 * len(style.labels))).facet(
        column=alt.Column("task:N", title="task")).properties(
        title="Accuracy on GLUE validation vs AdvGLUE (95% CI)")


def _bars_with_ci(frame: pd.DataFrame, style: Style, value_title: str, title: str) -> alt.LayerChart:
    base = alt.Chart(frame).encode(x=alt.X("task:N", title="task", axis=alt.Axis(labelAngle=0)),
                                   xOffset=alt.XOffset("label:N", sort=list(style.labels.values())))
    bars = base.mark_bar().encode(
        y=alt.Y("value:Q", title=value_title), color=style.model_color(),
        tooltip=["label:N", "task:N", alt.Tooltip("value:Q", format=".3f"),
                 alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f")])
    layers = [bars]
    if frame["ci_low"].notna().any():
        layers.append(base.mark_rule(color="black").encode(y="ci_low:Q", y2="ci_high:Q"))
    return alt.layer(*layers).properties(width=style.width, height=style.height, title=title)


def robustness_drop(data: ReportData, style: Style) -> alt.Chart:
    frame = totals(data.get("metrics"), "robustness_drop", ("advglue", "glue", "advglue_original"))
    if frame.empty:
        return placeholder("no robustness_drop rows in metrics.csv (AdvGLUE not evaluated?)", style)
    frame = with_labels(frame, style.labels)
    return _bars_with_ci(frame, style, "accuracy drop (clean - adversarial)",
                         "Robustness drop: accuracy lost under AdvGLUE attacks (95% CI)")


def advglue_scores(data: ReportData, style: Style) -> alt.Chart:
    scores = data.get("scores")
    if scores is None:
        return placeholder("no AdvGLUE official scores (advglue_scores.csv)", style)
    frame = scores.groupby(["model", "task"], sort=False).agg(value=("score", "mean")).reset_index()
    frame["ci_low"] = frame["ci_high"] = float("nan")
    frame = with_labels(frame, style.labels)
    return _bars_with_ci(frame, style, "AdvGLUE score", "AdvGLUE score per task and overall (official metric)")


def _efficiency_rows(data: ReportData) -> pd.DataFrame | None:
    efficiency = data.get("efficiency")
    if efficiency is None:
        return None
    rows = efficiency[efficiency["median_ms"].notna()]
    if "status" in rows.columns:
        rows = rows[rows["status"] == "ok"]
    return rows if not rows.empty else None


def _per_mode_lines(frame: pd.DataFrame, style: Style, y: str, y_title: str, y_log: bool, title: str,
                    extra_tooltip: list) -> alt.FacetChart:
    frame = frame.copy()
    frame["batch"] = "batch " + frame["batch_size"].astype(str)
    y_scale = alt.Scale(type="log") if y_log else alt.Scale()
    chart = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("seq_len:Q", title="sequence length", scale=alt.Scale(type="log", base=2),
                axis=alt.Axis(values=sorted(frame["seq_len"].unique().tolist()))),
        y=alt.Y(f"{y}:Q", title=y_title, scale=y_scale),
        color=style.model_color(), strokeDash=alt.StrokeDash("batch:N", title="batch size"),
        tooltip=["label:N", "mode:N", "batch_size:Q", "seq_len:Q"] + extra_tooltip,
    ).properties(width=style.width // 2, height=style.height)
    return chart.facet(column=alt.Column("mode:N", title="mode", sort=["train", "prefill", "decode"]),
                       title=title).resolve_scale(y="independent")


def efficiency_scaling(data: ReportData, style: Style) -> alt.Chart:
    rows = _efficiency_rows(data)
    if rows is None:
        return placeholder("no efficiency measurements (efficiency.csv)", style)
    frame = with_labels(rows, style.labels)
    return _per_mode_lines(
        frame, style, "median_ms", "median latency (ms; decode: per token)", True,
        "Latency vs sequence length (log-log)",
        [alt.Tooltip("median_ms:Q", format=".2f"), alt.Tooltip("p10_ms:Q", format=".2f"),
         alt.Tooltip("p90_ms:Q", format=".2f"), alt.Tooltip("tokens_per_s:Q", format=",.0f")])


def memory_scaling(data: ReportData, style: Style) -> alt.Chart:
    rows = _efficiency_rows(data)
    if rows is None or rows["peak_mem_mb"].notna().sum() == 0:
        return placeholder("no peak memory measurements (efficiency.csv)", style)
    frame = with_labels(rows[rows["peak_mem_mb"].notna()], style.labels)
    return _per_mode_lines(frame, style, "peak_mem_mb", "peak memory growth (MiB)", False,
                           "Peak memory vs sequence length",
                           [alt.Tooltip("peak_mem_mb:Q", format=".1f")])


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
        color=style.model_color(),
        tooltip=["label:N", "seq_len:Q", alt.Tooltip("state_mb:Q", format=".4f")],
    ).properties(width=style.width, height=style.height,
                 title="Decode state (KV cache or recurrent state) vs context length")


def tradeoff_points(data: ReportData) -> tuple[pd.DataFrame, str]:
    """Per model: throughput at the largest common length, mean GLUE and AdvGLUE accuracy, Pareto flag."""
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
    objectives = ["tokens_per_s", "glue_acc"] + (["advglue_acc"] if frame["advglue_acc"].notna().all() else [])
    frame["pareto"] = pareto_flags(frame, objectives).map({True: "Pareto-optimal", False: "dominated"})
    return frame.reset_index(), f"{mode} tokens/s at sequence length {length}"


def tradeoff(data: ReportData, style: Style) -> alt.Chart:
    frame, x_title = tradeoff_points(data)
    if frame.empty:
        return placeholder("needs both GLUE accuracy and efficiency measurements of the same models", style)
    frame = with_labels(frame, style.labels)
    # Size by AdvGLUE accuracy only when every model has one: a point without a size would not be drawn.
    has_adv = bool(frame["advglue_acc"].notna().all())
    encoding = dict(
        x=alt.X("tokens_per_s:Q", title=x_title, scale=alt.Scale(zero=False, padding=40)),
        y=alt.Y("glue_acc:Q", title="mean GLUE accuracy", scale=alt.Scale(zero=False, padding=30)),
        color=style.model_color(),
        shape=alt.Shape("pareto:N", title="Pareto front", scale=alt.Scale(
            domain=["Pareto-optimal", "dominated"], range=["diamond", "circle"])),
        tooltip=["label:N", alt.Tooltip("tokens_per_s:Q", format=",.0f"), alt.Tooltip("glue_acc:Q", format=".3f"),
                 alt.Tooltip("advglue_acc:Q", format=".3f"), "pareto:N"])
    if has_adv:
        encoding["size"] = alt.Size("advglue_acc:Q", title="mean AdvGLUE accuracy",
                                    scale=alt.Scale(range=[80, 600]))
    points = alt.Chart(frame).mark_point(filled=True, opacity=0.85).encode(**encoding)
    if not has_adv:
        points = points.mark_point(filled=True, opacity=0.85, size=200)
    names = alt.Chart(frame).mark_text(dy=-16).encode(x="tokens_per_s:Q", y="glue_acc:Q", text="label:N")
    title = "Efficiency vs performance" + (" vs robustness (size: AdvGLUE accuracy)" if has_adv else "")
    return alt.layer(points, names).properties(width=style.width, height=style.height, title=title)


@dataclass(frozen=True)
class Figure:
    name: str
    heading: str
    caption: str
    build: Callable[[ReportData, Style], alt.TopLevelMixin]


FIGURE_LIST = [
    Figure("glue_vs_advglue", "GLUE vs AdvGLUE accuracy",
           "Accuracy per model and task on the clean GLUE validation set and on AdvGLUE. Error bars: the "
           "bootstrap 95% CI of one seed, or a 95% t-interval over seeds when there are several.",
           glue_vs_advglue),
    Figure("robustness_drop", "Robustness drop",
           "Accuracy lost under adversarial perturbation, per model and task (higher is less robust).",
           robustness_drop),
    Figure("advglue_scores", "AdvGLUE official score",
           "The AdvGLUE benchmark score (mean over seeds), per task and overall.", advglue_scores),
    Figure("efficiency_scaling", "Latency vs sequence length",
           "Median latency per training step, per prefill, and per decoded token, over the profiled "
           "sequence lengths (log-log).", efficiency_scaling),
    Figure("memory_scaling", "Peak memory vs sequence length",
           "Peak memory growth of one training step / prefill / decode run over the model's resident memory.",
           memory_scaling),
    Figure("decode_state", "Decode state size",
           "Bytes carried between decoding steps per sequence: a KV cache grows with the context, a "
           "recurrent state does not.", decode_state),
    Figure("tradeoff", "Efficiency, performance and robustness",
           "Throughput against mean GLUE accuracy; marker size shows mean AdvGLUE accuracy; diamonds mark "
           "models that no other model beats on all of these at once (Pareto-optimal).", tradeoff),
]
FIGURES = [figure.name for figure in FIGURE_LIST]
