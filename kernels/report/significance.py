"""Pairwise significance in the report: the exact McNemar table (pairwise_significance.csv) shown per task,
evaluation set and seed, with the differences that are NOT significant marked, and one-line summaries per task
for the GLUE and AdvGLUE sections."""

from __future__ import annotations

import html

import pandas as pd

from kernels.report.tables import ReportData

# The evaluator's level (kernels.evaluation.significance.ALPHA); not imported: the report needs no torch.
ALPHA = 0.05
SET_NAMES = {"glue": "GLUE validation", "advglue": "AdvGLUE", "advglue_original": "AdvGLUE clean originals"}
DATASET_ORDER = ["glue", "advglue", "advglue_original"]
LEVEL_ORDER = ["all", "word", "sentence", "human"]
VERDICT_SIGNIFICANT = "significant"
VERDICT_RAW_ONLY = "n.s. after Holm"
VERDICT_NOT = "n.s."


def oriented(table: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Every pair with ``model_a`` before ``model_b`` in the report's model order (accuracies, ``diff`` and the
    discordant counts ``b``/``c`` swapped where a row was the other way round)."""
    rank = {name: i for i, name in enumerate(order)}
    flip = table["model_a"].map(rank).fillna(len(rank)) > table["model_b"].map(rank).fillna(len(rank))
    table = table.copy()
    for first, second in (("model_a", "model_b"), ("acc_a", "acc_b"), ("b", "c")):
        table.loc[flip, [first, second]] = table.loc[flip, [second, first]].to_numpy()
    table.loc[flip, "diff"] = -table.loc[flip, "diff"]
    return table


def verdict(p_value: float, p_holm: float) -> str:
    """significant (Holm-adjusted p < alpha), n.s. after Holm (only the raw p < alpha), or n.s."""
    if p_holm < ALPHA:
        return VERDICT_SIGNIFICANT
    return VERDICT_RAW_ONLY if p_value < ALPHA else VERDICT_NOT


def set_name(dataset: str, split: str, task: str) -> str:
    """GLUE validation / AdvGLUE / AdvGLUE clean originals, with the split where it is not the usual one."""
    name = SET_NAMES.get(dataset, dataset)
    usual = {"glue": "validation"}.get(dataset, task)
    return name if str(split) == usual else f"{name} ({split})"


def _sorted(table: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    rank = {name: i for i, name in enumerate(order)}
    keys = table.assign(_dataset=table["dataset"].map({d: i for i, d in enumerate(DATASET_ORDER)}).fillna(9),
                        _level=table["level"].map({lv: i for i, lv in enumerate(LEVEL_ORDER)}).fillna(9),
                        _a=table["model_a"].map(rank), _b=table["model_b"].map(rank))
    keys = keys.sort_values(["task", "_dataset", "split", "_level", "seed", "_a", "_b"], kind="stable")
    return table.loc[keys.index]


def prepared(data: ReportData) -> pd.DataFrame | None:
    """The significance rows oriented and sorted in the report's order, with a ``verdict``; None when absent."""
    table = data.get("significance")
    if table is None:
        return None
    order = list(data.labels)
    table = oriented(table.assign(level=table["level"].astype(str)), order)
    table["verdict"] = [verdict(p, h) for p, h in zip(table["p_value"], table["p_holm"])]
    return _sorted(table, order).reset_index(drop=True)


def significance_table(data: ReportData, levels: tuple[str, ...] = ("all",)) -> tuple[pd.DataFrame, list[str]]:
    """The display table of the rows at ``levels`` and one CSS class per row (``ns`` where not significant)."""
    table = prepared(data)
    if table is None:
        return pd.DataFrame(), []
    table = table[table["level"].isin(levels)]
    label = data.labels.get
    shown = pd.DataFrame({
        "Task": table["task"].astype(str),
        "Evaluation set": [set_name(d, s, t) for d, s, t in zip(table["dataset"], table["split"], table["task"])],
        "Level": table["level"].map(lambda lv: "all levels" if lv == "all" else lv),
        "Seed": table["seed"].astype(str),
        "Model A": table["model_a"].map(lambda m: label(m, m)),
        "Model B": table["model_b"].map(lambda m: label(m, m)),
        "Items": table["n"].astype(int),
        "Acc. A": table["acc_a"], "Acc. B": table["acc_b"],
        "A − B": [f"{d:+.3f}" for d in table["diff"]],
        "b": table["b"].astype(int), "c": table["c"].astype(int),
        "p": [format_p(p) for p in table["p_value"]],
        "p (Holm)": [format_p(p) for p in table["p_holm"]],
        "Verdict": table["verdict"],
    })
    if len(set(levels)) == 1:
        shown = shown.drop(columns="Level")
    classes = ["" if v == VERDICT_SIGNIFICANT else "ns" for v in table["verdict"]]
    return shown.reset_index(drop=True), classes


def format_p(p: float) -> str:
    if p < 0.001:
        return f"{p:.1e}"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def _p_range(values: pd.Series) -> str:
    low, high = values.min(), values.max()
    return f"p = {format_p(low)}" if low == high else f"p = {format_p(low)}–{format_p(high)}"


def _pair_phrase(rows: pd.DataFrame, labels: dict[str, str]) -> tuple[str, str]:
    """(kind, phrase) for one pair over its seeds: kind is significant, mixed or n.s. (raw p against alpha, so
    an n.s. here is n.s. under any correction)."""
    a, b = labels.get(rows["model_a"].iloc[0], rows["model_a"].iloc[0]), labels.get(
        rows["model_b"].iloc[0], rows["model_b"].iloc[0])
    hits, seeds = int((rows["p_value"] < ALPHA).sum()), len(rows)
    if hits == 0:
        return VERDICT_NOT, f"{a} vs {b} ({_p_range(rows['p_value'])})"
    sign = ">" if rows["diff"].mean() > 0 else "<"
    if hits == seeds:
        return VERDICT_SIGNIFICANT, f"{a} {sign} {b} ({_p_range(rows['p_value'])})"
    return "mixed", f"{a} {sign} {b} in {hits} of {seeds} seeds ({_p_range(rows['p_value'])})"


def task_summaries(data: ReportData, datasets: tuple[str, ...]) -> list[str]:
    """One HTML line per task and whole evaluation set of ``datasets``: which pairwise differences are
    significant (raw exact McNemar p < alpha) and which are not."""
    table = prepared(data)
    if table is None:
        return []
    table = table[(table["level"] == "all") & table["dataset"].isin(datasets)]
    lines = []
    for (task, dataset, split), rows in table.groupby(["task", "dataset", "split"], sort=False):
        found: dict[str, list[str]] = {VERDICT_SIGNIFICANT: [], "mixed": [], VERDICT_NOT: []}
        for _, pair in rows.groupby(["model_a", "model_b"], sort=False):
            kind, phrase = _pair_phrase(pair, data.labels)
            found[kind].append(phrase)
        parts = [f"<b>{html.escape(str(task))}</b>, {html.escape(set_name(dataset, split, task))}:"]
        if found[VERDICT_SIGNIFICANT]:
            parts.append("significant: " + html.escape("; ".join(found[VERDICT_SIGNIFICANT])) + ".")
        if found["mixed"]:
            parts.append("significant in some seeds only: " + html.escape("; ".join(found["mixed"])) + ".")
        if found[VERDICT_NOT]:
            parts.append('<span class="ns">not significant: ' + html.escape("; ".join(found[VERDICT_NOT]))
                         + ".</span>")
        lines.append(" ".join(parts))
    return lines


def summary_block(data: ReportData, datasets: tuple[str, ...], block_id: str) -> str:
    """The task summaries as a hint list under a section's charts ('' when there is no significance table)."""
    lines = task_summaries(data, datasets)
    if not lines:
        return ""
    items = "".join(f"<li>{line}</li>" for line in lines)
    return (f'<div class="significance-notes" id="{block_id}"><h3>Which differences are significant?</h3>'
            '<p class="hint">Pairwise differences, exact McNemar '
            f"test on the same items (p &lt; {ALPHA} before correction; details in "
            f'<a href="#significance">Significance</a>):</p><ul>{items}</ul></div>')


def headline_summary(data: ReportData) -> str:
    """How many whole-set pairwise differences are significant, for the headline section."""
    table = prepared(data)
    if table is None:
        return ""
    whole = table[(table["level"] == "all") & table["dataset"].isin(["glue", "advglue"])]
    if whole.empty:
        return ""
    significant = int((whole["verdict"] == VERDICT_SIGNIFICANT).sum())
    raw = int((whole["p_value"] < ALPHA).sum())
    return (f'<p class="hint" id="headline-significance">Per task, {significant} of {len(whole)} pairwise accuracy '
            f"differences on whole GLUE validation and AdvGLUE sets are significant after Holm's correction "
            f"({raw} before it; exact McNemar, p &lt; {ALPHA}); the others are within noise, so small gaps in "
            'the means below do not rank the models. See <a href="#significance">Significance</a>.</p>')
