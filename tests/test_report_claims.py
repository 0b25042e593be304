"""What the report claims: a best value only where it is significantly better than every other model (ties
otherwise), single-class models flagged and left out of the robustness rankings, what each mean includes,
crossovers only beyond the measured spread, the Pareto view's noise, escaped cells and honest score labels."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from kernels.report.build import headline_section, headline_table, pareto_noise_lines, pareto_table
from kernels.report.claims import column_verdicts, single_class_sets
from kernels.report.efficiency_tables import crossover_statements, crossover_table
from kernels.report.tables import ReportData, crossover_lengths, score_scope

MODELS = {"transformer_pp": "Transformer++", "gla": "GLA", "mmfree": "MatMul-Free LM"}
TASKS = ("sst2", "rte")
ACCURACY = {"transformer_pp": 0.80, "gla": 0.70, "mmfree": 0.78}


def metric_row(model, task, dataset, metric, value, seed=0, n=100, low=None, high=None):
    return dict(model=model, task=task, seed=seed, dataset=dataset, split="validation" if dataset == "glue" else task,
                level="all", method="all", metric=metric, value=value, ci_low=value - 0.05 if low is None else low,
                ci_high=value + 0.05 if high is None else high, n=n)


def accuracy_metrics(accuracy=ACCURACY) -> list[dict]:
    return [metric_row(m, t, d, "accuracy", acc - (0.2 if d == "advglue" else 0.0))
            for m, acc in accuracy.items() for t in TASKS for d in ("glue", "advglue")]


def mcnemar_rows(p_holm: dict[tuple[str, str, str], float], dataset="glue") -> list[dict]:
    """Significance rows as tables_eval writes them; ``p_holm[(a, b, task)]``, diff from ACCURACY."""
    rows = []
    for (a, b, task), p in p_holm.items():
        rows.append(dict(model_a=a, model_b=b, task=task, seed=0, dataset=dataset,
                         split="validation" if dataset == "glue" else task, level="all", n=100, acc_a=ACCURACY[a],
                         acc_b=ACCURACY[b], diff=ACCURACY[a] - ACCURACY[b], b=10, c=5, p_value=p, p_holm=p))
    return rows


def data_with(metrics: list[dict], significance: list[dict] | None = None, robustness: list[dict] | None = None,
              efficiency: pd.DataFrame | None = None, labels=MODELS) -> ReportData:
    tables = {"metrics": pd.DataFrame(metrics), "significance": pd.DataFrame(significance) if significance else None,
              "robustness_significance": pd.DataFrame(robustness) if robustness else None, "efficiency": efficiency}
    return ReportData(tables=tables, labels=dict(labels))


def cell_classes(page: str, table_id: str) -> dict[str, dict[str, str]]:
    """{row label: {column: css class of the cell ('' when none)}} of one table of the page."""
    table = re.search(rf'<table class="data" id="{table_id}">(.*?)</table>', page, flags=re.S).group(1)
    header = [html.unescape(h).split(" ↑")[0].split(" ↓")[0] for h in re.findall(r"<th[^>]*>(.*?)</th>", table)]
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], flags=re.S):
        cells = re.findall(r'<td(?: class="([^"]*)")?[^>]*>(.*?)</td>', row, flags=re.S)
        label = html.unescape(cells[0][1])
        out[label] = {column: css.replace("text", "").strip() for column, (css, _) in zip(header, cells)}
    return out


# ----------------------------------------------------------------------------- bold only when significant

ALL_PAIRS = [("transformer_pp", "gla"), ("transformer_pp", "mmfree"), ("gla", "mmfree")]


def test_best_is_bold_only_when_significantly_better_than_every_other():
    # Transformer++ has the best mean GLUE accuracy; it beats GLA on both tasks, but MatMul-Free LM only on SST-2:
    # on RTE their difference is within noise, so the two are tied and nothing is bold.
    p = {(a, b, t): 0.001 for a, b in ALL_PAIRS for t in TASKS}
    p[("transformer_pp", "mmfree", "rte")] = 0.40
    p[("gla", "mmfree", "sst2")] = p[("gla", "mmfree", "rte")] = 0.30
    data = data_with(accuracy_metrics(), mcnemar_rows(p))
    page = headline_section(data)
    glue = {label: cells["GLUE accuracy"] for label, cells in cell_classes(page, "headline").items()}
    assert glue == {"Transformer++": "tie", "GLA": "", "MatMul-Free LM": "tie"}
    assert 'class="best' not in page.split('id="headline-efficiency"')[0]
    verdict = column_verdicts(data, headline_table(data), {v: k for k, v in MODELS.items()})["GLUE accuracy"]
    assert verdict.best == [] and verdict.tied == ["transformer_pp", "mmfree"]
    assert "rte p(Holm) 0.40" in verdict.text and "McNemar" in verdict.text
    # significant on every task the mean covers: now it is the best
    p[("transformer_pp", "mmfree", "rte")] = 0.01
    glue = {label: cells["GLUE accuracy"] for label, cells in
            cell_classes(headline_section(data_with(accuracy_metrics(), mcnemar_rows(p))), "headline").items()}
    assert glue == {"Transformer++": "best", "GLA": "", "MatMul-Free LM": ""}


def test_a_significant_test_in_the_wrong_direction_is_no_win():
    p = {(a, b, t): 0.001 for a, b in ALL_PAIRS for t in TASKS}
    rows = mcnemar_rows(p)
    for row in rows:  # on RTE, MatMul-Free LM is significantly ahead of Transformer++
        if (row["model_a"], row["model_b"], row["task"]) == ("transformer_pp", "mmfree", "rte"):
            row["diff"] = -0.05
    data = data_with(accuracy_metrics(), rows)
    verdict = column_verdicts(data, headline_table(data), {v: k for k, v in MODELS.items()})["GLUE accuracy"]
    assert verdict.best == [] and "mmfree" in verdict.tied


def test_no_significance_table_means_no_bold():
    data = data_with(accuracy_metrics())
    assert 'class="best' not in headline_section(data)


def test_latency_bold_only_with_p10_p90_apart_and_enough_repeats():
    def point(model, median, spread, repeats=5):
        return dict(model=model, device="cpu", mode="decode", batch_size=1, seq_len=512, median_ms=median,
                    p10_ms=median - spread, p90_ms=median + spread, tokens_per_s=1e3 / median, peak_mem_mb=1.0,
                    params=1, status="ok", repeats=repeats, state_mb=1.0, peak_mem_source="tensors")

    # GLA's median is lowest but its range overlaps Transformer++'s: a tie (issue: 2.454 vs 2.489 ms)
    close = pd.DataFrame([point("transformer_pp", 2.489, 0.3), point("gla", 2.454, 0.3), point("mmfree", 9.0, 0.5)])
    data = data_with(accuracy_metrics(), efficiency=close)
    cells = cell_classes(headline_section(data), "headline-efficiency")
    assert {k: v["Decode ms/token @ 512"] for k, v in cells.items()} == {
        "Transformer++": "tie", "GLA": "tie", "MatMul-Free LM": ""}
    apart = pd.DataFrame([point("transformer_pp", 5.0, 0.3), point("gla", 2.4, 0.3), point("mmfree", 9.0, 0.5)])
    cells = cell_classes(headline_section(data_with(accuracy_metrics(), efficiency=apart)), "headline-efficiency")
    assert cells["GLA"]["Decode ms/token @ 512"] == "best"
    # the same ranges from 3 repeats: not enough to claim anything
    few = apart.assign(repeats=3)
    cells = cell_classes(headline_section(data_with(accuracy_metrics(), efficiency=few)), "headline-efficiency")
    assert "best" not in {v["Decode ms/token @ 512"] for v in cells.values()}
    # decode state sizes are exact: the smallest is the best however close
    assert cells["GLA"]["Decode state MiB/seq @ 512"] == "tie"  # all equal here: a three-way tie
    exact = apart.assign(state_mb=[2.0, 1.0, 1.001])
    cells = cell_classes(headline_section(data_with(accuracy_metrics(), efficiency=exact)), "headline-efficiency")
    assert cells["GLA"]["Decode state MiB/seq @ 512"] == "best"


# ----------------------------------------------------------------------------- single-class models

def single_class_metrics() -> list[dict]:
    """GLA and MatMul-Free LM predict one class on every RTE item (GLUE and AdvGLUE), as in the demo; their
    RTE attack success rate and paired drop are 0.000 [0, 0]."""
    rows = accuracy_metrics()
    for model in MODELS:
        for task in TASKS:
            one_class = model != "transformer_pp" and task == "rte"
            for dataset in ("glue", "advglue", "advglue_original"):
                rows.append(metric_row(model, task, dataset, "majority_prediction_share",
                                       1.0 if one_class else 0.6, low=np.nan, high=np.nan))
            asr = 0.0 if one_class else {"transformer_pp": 0.30, "gla": 0.25, "mmfree": 0.23}[model]
            rows.append(metric_row(model, task, "advglue", "attack_success_rate", asr,
                                   low=0.0 if one_class else asr - 0.1, high=0.0 if one_class else asr + 0.1))
            rows.append(metric_row(model, task, "advglue", "robustness_drop", 0.0 if one_class else 0.2,
                                   low=0.0 if one_class else 0.1, high=0.0 if one_class else 0.3))
    return rows


def robustness_rows(p: float) -> list[dict]:
    return [dict(model_a=a, model_b=b, task=t, seed=0, split=t, level="all", metric=metric, n=80, value_a=0.3,
                 value_b=0.2, diff=0.1, p_value=p, p_holm=p, significant=p < 0.05)
            for a, b in ALL_PAIRS for t in TASKS for metric in ("attack_success_rate", "robustness_drop")]


def test_single_class_models_are_flagged_and_not_ranked_on_robustness():
    data = data_with(single_class_metrics(), robustness=robustness_rows(0.001))
    flags = single_class_sets(data.get("metrics"))
    assert set(zip(flags["model"], flags["task"])) == {("gla", "rte"), ("mmfree", "rte")}
    page = headline_section(data)
    classes = cell_classes(page, "headline")
    # their lower attack success rate comes from a constant prediction on RTE: not ranked, nothing bold
    asr = {label: cells["Attack success rate"] for label, cells in classes.items()}
    assert asr == {"Transformer++": "", "GLA": "unranked", "MatMul-Free LM": "unranked"}
    table = re.search(r'<table class="data" id="headline">(.*?)</table>', page, flags=re.S).group(1)
    assert "Predicts one class for every item of" in table
    assert "⚠ rte GLUE, rte AdvGLUE" in html.unescape(table)
    means = html.unescape(re.search(r'id="headline-means">(.*?)</ul>', page, flags=re.S).group(1))
    # MatMul-Free LM's mean is (0.23 + 0) / 2: the report says what it includes
    assert ("Attack success rate: mean over AdvGLUE sets sst2, rte; it includes GLA (rte 0.000 [0.000, 0.000], "
            "one class predicted), MatMul-Free LM (rte 0.000 [0.000, 0.000], one class predicted)") in means
    assert headline_table(data).loc["MatMul-Free LM", "Attack success rate"] == pytest.approx(0.115)


def test_robustness_table_flags_single_class_sets():
    from kernels.report.robustness import MAJORITY, robustness_table

    table = robustness_table(data_with(single_class_metrics()))
    shown, model = {}, None
    for _, row in table.iterrows():
        model = row["Model"] or model  # the name is on the first row of its block only
        shown[(model, row["AdvGLUE set"])] = row[MAJORITY]
    assert shown[("GLA", "rte")] == "1.000 ⚠ one class"
    assert shown[("Transformer++", "rte")] == "0.600"
    assert not any("⚠" in v for (model, task), v in shown.items() if task == "sst2")


# ----------------------------------------------------------------------------- escaping and labels

def test_headline_cells_and_headers_are_escaped():
    labels = dict(MODELS, gla="<b>x</b>&")
    data = data_with(single_class_metrics(), labels=labels)
    page = headline_section(data)
    table = re.search(r'<table class="data" id="headline">(.*?)</table>', page, flags=re.S).group(1)
    assert "&lt;b&gt;x&lt;/b&gt;&amp;" in table
    assert "<b>x</b>" not in page


def test_advglue_score_is_official_only_with_all_five_tasks():
    partial = pd.DataFrame({"model": "m", "seed": 0, "task": ["sst2", "rte", "overall"], "score": 0.5,
                            "complete": False})
    assert score_scope(partial) == "mean of sst2, rte: 2 of 5 tasks, not the official score"
    assert score_scope(partial, short=True) == "sst2, rte only"
    full = pd.DataFrame({"model": "m", "seed": 0, "task": ["sst2", "qqp", "mnli", "qnli", "rte", "overall"],
                         "score": 0.5, "complete": True})
    assert score_scope(full) == "official"
    data = data_with(accuracy_metrics())
    data.tables["scores"] = partial.assign(model="gla")
    assert "AdvGLUE score (sst2, rte only)" in headline_table(data).columns


# ----------------------------------------------------------------------------- crossovers beyond the noise

def efficiency_rows(latency: dict[str, list[float]], spread: float = 0.05, repeats: int = 5,
                    memory: dict[str, list[float]] | None = None, lengths=(64, 128, 256, 512, 1024)) -> pd.DataFrame:
    rows = []
    for model, values in latency.items():
        for i, (length, ms) in enumerate(zip(lengths, values)):
            rows.append(dict(model=model, device="cpu", mode="train", batch_size=1, seq_len=length, median_ms=ms,
                             p10_ms=ms * (1 - spread), p90_ms=ms * (1 + spread), repeats=repeats, status="ok",
                             peak_mem_mb=(memory or {}).get(model, [length / 8] * len(lengths))[i],
                             peak_mem_source="tensors", tokens_per_s=length / ms * 1e3))
    return pd.DataFrame(rows)


def test_crossover_sentence_names_the_first_length_of_the_crossover():
    # GLA is faster from 256 on (not only at the longest length, 1,024): the sentence must say 256
    frame = efficiency_rows({"transformer_pp": [1, 2, 4, 8, 16], "gla": [3, 3, 3, 3, 3]})
    data = ReportData(tables={"efficiency": frame}, labels={"transformer_pp": "Transformer++", "gla": "GLA"},
                      baseline="transformer_pp")
    (sentence,) = crossover_statements(data)
    assert sentence.startswith("train: GLA is faster than Transformer++ from 256 tokens")
    assert crossover_table(data).loc["GLA", "train: faster than Transformer++"] == "from 256"


def test_crossover_needs_ranges_apart_and_enough_repeats():
    latency = {"base": [1, 2, 4, 8, 16], "a": [3, 3, 3.9, 7.6, 9]}  # a's median is lower from 256 on
    found = crossover_lengths(efficiency_rows(latency, spread=0.01), "base").set_index(["model", "quantity"])
    assert found.loc[("a", "faster"), "from_len"] == 256
    # the same medians with wide p10-p90 ranges: 3.9 vs 4 and 7.6 vs 8 are within the spread, 9 vs 16 is not
    found = crossover_lengths(efficiency_rows(latency, spread=0.1), "base").set_index(["model", "quantity"])
    assert found.loc[("a", "faster"), "from_len"] == 1024
    # from three repeats, nothing is claimed
    found = crossover_lengths(efficiency_rows(latency, spread=0.01, repeats=3), "base").set_index(["model", "quantity"])
    assert np.isnan(found.loc[("a", "faster"), "from_len"])


def test_lighter_only_from_exact_memory():
    latency = {"base": [1, 2, 4, 8, 16], "a": [1, 2, 4, 8, 16]}
    memory = {"base": [1.0, 2.0, 4.0, 8.0, 16.0], "a": [4.0, 4.0, 4.0, 4.0, 4.0]}
    frame = efficiency_rows(latency, memory=memory)
    found = crossover_lengths(frame, "base").set_index(["model", "quantity"])
    assert found.loc[("a", "lighter"), "from_len"] == 512  # 4.0 == 4.0 at 256 is no win
    rss = frame.assign(peak_mem_source="rss")  # one resident-set sample per point: no claim
    assert np.isnan(crossover_lengths(rss, "base").set_index(["model", "quantity"]).loc[("a", "lighter"), "from_len"])


# ----------------------------------------------------------------------------- the Pareto view's noise

def test_pareto_view_says_which_differences_are_within_the_noise():
    p = {(a, b, t): 0.30 for a, b in ALL_PAIRS for t in TASKS}
    p[("transformer_pp", "gla", "sst2")] = p[("transformer_pp", "gla", "rte")] = 0.001
    rows = []
    for model, ms in {"transformer_pp": 100.0, "gla": 50.0, "mmfree": 99.0}.items():
        rows.append(dict(model=model, device="cpu", mode="train", batch_size=1, seq_len=512, median_ms=ms,
                         p10_ms=ms * 0.98, p90_ms=ms * 1.02, repeats=5, status="ok", tokens_per_s=512 / ms * 1e3,
                         peak_mem_mb=1.0, peak_mem_source="tensors"))
    data = data_with(accuracy_metrics(), mcnemar_rows(p) + mcnemar_rows(p, "advglue"), efficiency=pd.DataFrame(rows))
    table = pareto_table(data)
    # on the means every model is Pareto-optimal (MatMul-Free LM: 0.78 at 99 ms, Transformer++ 0.80 at 100 ms)
    assert set(table["Pareto front (means)"]) == {"Pareto-optimal"}
    # Beyond the noise, GLA (much faster, accuracy within noise of MatMul-Free LM's) dominates MatMul-Free LM
    assert table.loc["MatMul-Free LM", "Dominated beyond the noise by"] == "GLA"
    assert table.loc["Transformer++", "Dominated beyond the noise by"] == "–"
    lines = pareto_noise_lines(data)
    assert ("Transformer++ vs MatMul-Free LM: within the noise on Train tokens/s, GLUE accuracy, AdvGLUE accuracy"
            in lines)
    assert ("Transformer++ vs GLA: no difference within the noise") in lines
