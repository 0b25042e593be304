"""The report built from synthetic tidy tables: one offline page with every chart, static SVG/PNG figures,
and a partial input that renders with notes instead of failing."""

from __future__ import annotations

import html
import json
import re
import runpy
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kernels.report import DEMO_BANNER, FIGURES, build_report, headline_table, load_report_data
from kernels.report.tables import pareto_flags

MODELS = {"transformer_pp": "Transformer++", "gla": "GLA", "mmfree": "MatMul-Free LM"}
TASKS = ["sst2", "rte"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PEAK_GFLOPS = 50.0
REPO = Path(__file__).resolve().parents[1]


def write_metrics(path: Path, models, tasks, advglue=True, seeds=(0,)) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for model in models:
        for task in tasks:
            for seed in seeds:
                clean = 0.7 + 0.2 * rng.random()
                sets = [("glue", "validation", clean)]
                if advglue:
                    sets.append(("advglue", task, clean - 0.3))
                    sets.append(("advglue_original", task, clean - 0.05))
                for dataset, split, acc in sets:
                    rows.append(dict(model=model, task=task, seed=seed, dataset=dataset, split=split, level="all",
                                     method="all", metric="accuracy", value=acc, ci_low=acc - 0.05,
                                     ci_high=acc + 0.05, n=100))
                    if dataset == "advglue":
                        # As evaluate writes them: per level over all methods, per method within its level.
                        whole = rows[-1]
                        rows.append(dict(whole, level="word", value=acc - 0.1, ci_low=acc - 0.2, ci_high=acc))
                        rows.append(dict(whole, level="word", method="TextFooler", value=acc - 0.15))
                if advglue:
                    for metric, value in (("robustness_drop", 0.25), ("robustness_drop_unpaired", 0.3)):
                        rows.append(dict(model=model, task=task, seed=seed, dataset="advglue", split=task,
                                         level="all", method="all", metric=metric, value=value,
                                         ci_low=value - 0.05, ci_high=value + 0.05, n=50))
                    for level, n, skipped in (("all", 80, 12), ("word", 60, 9)):
                        # n: the items whose clean original is right; skipped: original wrong
                        rows.append(dict(model=model, task=task, seed=seed, dataset="advglue", split=task,
                                         level=level, method="all", metric="attack_success_rate",
                                         value=0.2 + 0.05 * seed, ci_low=0.1, ci_high=0.35, n=n, skipped=skipped))
    frame = pd.DataFrame(rows)
    # As tables_eval adds them: seed aggregates and the over-seeds interval (here simply the widest run interval).
    group = frame.groupby(["model", "task", "dataset", "split", "level", "method", "metric"])
    frame["n_seeds"] = group["value"].transform("count")
    frame["mean_over_seeds"] = group["value"].transform("mean")
    frame["ci_low_over_seeds"] = group["ci_low"].transform("min")
    frame["ci_high_over_seeds"] = group["ci_high"].transform("max")
    frame.to_csv(path, index=False)


def write_scores(path: Path, models, tasks) -> None:
    # MatMul-Free LM's overall score is marked incomplete: the report must say so.
    rows = [dict(model=m, seed=0, task=t, score=0.4 + 0.01 * i, complete=m != "mmfree")
            for i, m in enumerate(models) for t in tasks + ["overall"]]
    pd.DataFrame(rows).to_csv(path, index=False)


def write_throughput(path: Path, models, tasks) -> None:
    rows = [dict(model=m, task=t, seed=0, steps=100, tokens_per_s_median=5000.0 + 100 * i, elapsed_s=12.0,
                 final_loss=0.5) for i, m in enumerate(models) for t in tasks]
    pd.DataFrame(rows).to_csv(path, index=False)


def write_efficiency(path: Path, slopes_path: Path, models) -> None:
    """As tables_efficiency writes it: each job's own matmul peak (up to 20% apart, as in a demo run) and every
    model's MFU against the common one (kernels.profiling.tables.with_common_peak), 5 timed repeats per point,
    memory measured from tensors."""
    from kernels.profiling import fit_slopes, with_common_peak

    rows = []
    for i, model in enumerate(models):
        for mode in ("train", "prefill", "decode"):
            for seq_len in (64, 128, 256):
                median = (1 + i) * seq_len / 10 if mode != "decode" else 1.0 + i
                status = "oom" if (model == "transformer_pp" and mode == "train" and seq_len == 256) else "ok"
                rows.append(dict(model=model, device="cpu", mode=mode, batch_size=1, seq_len=seq_len,
                                 median_ms=median if status == "ok" else np.nan, p10_ms=median * 0.9,
                                 p90_ms=median * 1.1, tokens_per_s=1000 * seq_len / median, peak_mem_mb=seq_len / 8,
                                 params=1_500_000, status=status, threads=1, dtype="float32",
                                 state_mb=(seq_len / 256 if model == "transformer_pp" else 0.03)
                                 if mode == "decode" else np.nan,
                                 flops_per_token=2e6, achieved_gflops=1.0 + 0.01 * seq_len, repeats=5,
                                 device_name="test cpu", peak_gflops=PEAK_GFLOPS * (1 - 0.1 * i),
                                 peak_mem_source="tensors"))
    frame = with_common_peak(pd.DataFrame(rows))
    frame.to_csv(path, index=False)
    fit_slopes(frame).to_csv(slopes_path, index=False)


# (b, c) discordant counts per pair; Transformer++ vs MatMul-Free LM is far apart, the others are not.
DISCORDANT = {("transformer_pp", "gla"): (12, 10), ("gla", "mmfree"): (9, 14), ("transformer_pp", "mmfree"): (40, 5)}


def write_significance(path: Path, tasks, seeds=(0,)) -> None:
    """As tables_eval writes it; pairs stored in the opposite order for one pair (the report re-orients it)."""
    from kernels.evaluation.significance import holm_adjust, mcnemar_exact

    rows = []
    for task in tasks:
        for seed in seeds:
            for dataset, split, level, n in (("glue", "validation", "all", 200), ("advglue", task, "all", 100),
                                             ("advglue", task, "word", 60)):
                family = []
                for (a, b_model), (b, c) in DISCORDANT.items():
                    if (a, b_model) == ("gla", "mmfree"):
                        a, b_model, b, c = b_model, a, c, b  # stored as mmfree vs gla
                    acc_b = 0.6
                    family.append(dict(model_a=a, model_b=b_model, task=task, seed=seed, dataset=dataset,
                                       split=split, level=level, n=n, acc_a=acc_b + (b - c) / n, acc_b=acc_b,
                                       diff=(b - c) / n, b=b, c=c, p_value=mcnemar_exact(b, c)))
                for row, adjusted in zip(family, holm_adjust([r["p_value"] for r in family])):
                    rows.append(dict(row, significant=row["p_value"] < 0.05, p_holm=adjusted))
    pd.DataFrame(rows).to_csv(path, index=False)


def table_paths(directory: Path) -> dict[str, Path]:
    return {"metrics": directory / "metrics.csv", "scores": directory / "advglue_scores.csv",
            "throughput": directory / "finetune_throughput.csv", "efficiency": directory / "efficiency.csv",
            "slopes": directory / "efficiency_slopes.csv", "significance": directory / "pairwise_significance.csv"}


def write_tables(directory: Path, models, tasks, seeds=(0,), significance: bool = True) -> dict[str, Path]:
    """Every table the report reads, synthetic, under ``directory``; returns their paths."""
    paths = table_paths(directory)
    write_metrics(paths["metrics"], models, tasks, seeds=seeds)
    write_scores(paths["scores"], models, tasks)
    write_throughput(paths["throughput"], models, tasks)
    write_efficiency(paths["efficiency"], paths["slopes"], models)
    if significance:
        write_significance(paths["significance"], tasks, seeds=seeds)
    return paths


def embedded_specs(page: str) -> dict[str, dict]:
    found = re.findall(r'<script type="application/json" class="vega-spec" id="spec-([\w-]+)"[^>]*>(.*?)</script>',
                       page, flags=re.S)
    return {name: json.loads(text) for name, text in found}


def assert_figures_valid(figures_dir: Path) -> None:
    for name in FIGURES:
        png = (figures_dir / f"{name}.png").read_bytes()
        assert png.startswith(PNG_MAGIC), name
        assert len(png) > 1000, name
        root = ET.fromstring((figures_dir / f"{name}.svg").read_text(encoding="utf-8"))
        assert root.tag.endswith("svg"), name


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    directory = tmp_path_factory.mktemp("full")
    paths = write_tables(directory, MODELS, TASKS, seeds=(0, 1))
    html_path, figures = directory / "report" / "index.html", directory / "report" / "figures"
    config = {"run_name": "synthetic", "demo": True, "models": {m: {"label": l} for m, l in MODELS.items()}}
    notes = build_report(paths, html_path, figures, config=config, models=MODELS,
                         settings={"title": "Synthetic report", "width": 300, "height": 200})
    return html_path.read_text(encoding="utf-8"), figures, notes


def test_page_embeds_every_chart_spec(full_report):
    page, _, _ = full_report
    specs = embedded_specs(page)
    assert sorted(specs) == sorted(FIGURES)
    for name, spec in specs.items():
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/"), name
        # Full input: no chart falls back to the "missing data" placeholder text.
        assert spec.get("mark", {}) != {"type": "text", "fontSize": 14, "color": "#777"}, name
    glue = json.dumps(specs["glue_vs_advglue"])
    assert "ci_low" in glue and "AdvGLUE" in glue and "MatMul-Free LM" in glue


def test_page_is_self_contained(full_report):
    page, _, _ = full_report
    assert "<script src" not in page.replace(" ", "").replace("<scriptsrc", "<script src")
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)
    assert not re.search(r"<link[^>]*href\s*=\s*['\"]https?:", page)
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs"):
        assert cdn not in page
    assert "vegaEmbed" in page and len(page) > 500_000  # the inlined libraries


def test_page_has_banner_table_and_config(full_report):
    page, _, notes = full_report
    assert DEMO_BANNER in page
    assert 'id="headline"' in page and "Transformer++" in page
    assert "run_name: synthetic" in page
    # The OOM point of the synthetic efficiency table is reported, not dropped silently.
    assert any("Out of memory" in note and "train@256" in note for note in notes)
    assert any("incomplete" in note and "MatMul-Free LM" in note and "GLA" not in note for note in notes)


def test_consistent_model_colours(full_report):
    page, _, _ = full_report
    specs = embedded_specs(page)
    scales = set()
    for name in ("glue_vs_advglue", "robustness_drop", "efficiency_scaling", "tradeoff"):
        text = json.dumps(specs[name])
        match = re.search(r'"domain": (\["Transformer\+\+", "GLA", "MatMul-Free LM"\]), "range": (\[[^\]]*\])', text)
        assert match, name
        scales.add(match.group(0))
    assert len(scales) == 1


def test_static_figures_valid(full_report):
    _, figures, _ = full_report
    assert_figures_valid(figures)


def report_script_main():
    return runpy.run_path(str(REPO / "workflow_scripts" / "report.py"), run_name="workflow_script")["main"]


def test_partial_input_renders_with_missing_notes(tmp_path):
    """One model, one task, no AdvGLUE, no efficiency: rendered by the workflow script, gaps stated."""
    paths = table_paths(tmp_path)
    write_metrics(paths["metrics"], ["gla"], ["sst2"], advglue=False)
    html_path, figures = tmp_path / "report" / "index.html", tmp_path / "report" / "figures"
    report_script_main()(**{k: str(v) for k, v in paths.items()}, html=str(html_path),
                         figures=[str(figures / f"{n}.{e}") for n in FIGURES for e in ("svg", "png")],
                         config={"demo": False}, models=MODELS, report={"title": "Partial"})
    page = html_path.read_text(encoding="utf-8")
    assert DEMO_BANNER not in page
    notes = re.search(r'<ul class="notes" id="missing">(.*?)</ul>', page, flags=re.S).group(1)
    assert "No AdvGLUE results" in notes
    assert "efficiency table missing" in notes
    assert "No metrics results for: Transformer++, MatMul-Free LM" in notes
    assert sorted(embedded_specs(page)) == sorted(FIGURES)
    assert_figures_valid(figures)


def test_malformed_table_names_file_and_column(tmp_path):
    paths = table_paths(tmp_path)
    pd.DataFrame({"model": ["gla"], "task": ["sst2"]}).to_csv(paths["metrics"], index=False)
    with pytest.raises(ValueError, match=r"metrics\.csv.*'seed'"):
        build_report(paths, tmp_path / "index.html", tmp_path / "figures", models=MODELS)


def test_pareto_flags():
    points = pd.DataFrame({"speed": [1.0, 2.0, 0.5, 2.0], "acc": [0.9, 0.8, 0.7, 0.8]})
    assert pareto_flags(points, ["speed", "acc"]).tolist() == [True, True, False, True]


def test_headline_values_match_the_tables(tmp_path):
    paths = table_paths(tmp_path)
    write_metrics(paths["metrics"], MODELS, TASKS)
    write_efficiency(paths["efficiency"], paths["slopes"], MODELS)
    table = headline_table(load_report_data(paths, MODELS))
    metrics = pd.read_csv(paths["metrics"])
    glue = metrics.query("dataset == 'glue' and metric == 'accuracy' and level == 'all'")
    expected = glue.groupby("model")["value"].mean()
    for name, label in MODELS.items():
        assert table.loc[label, "GLUE accuracy"] == pytest.approx(expected[name])
    # Transformer++ ran out of memory for training at 256, so the common training length is 128.
    efficiency = pd.read_csv(paths["efficiency"])
    gla = efficiency.query("model == 'gla' and mode == 'train' and seq_len == 128")["tokens_per_s"].iloc[0]
    assert table.loc["GLA", "Train tokens/s @ 128"] == pytest.approx(gla)
    assert list(table.index) == list(MODELS.values())


def test_report_script_rejects_figure_list_mismatch(tmp_path):
    main = report_script_main()
    with pytest.raises(ValueError, match="figures"):
        main(**{k: str(v) for k, v in table_paths(tmp_path).items()}, html=str(tmp_path / "index.html"),
             figures=[str(tmp_path / "figures" / "other.svg")], config={}, models=MODELS, report={})


def test_page_has_every_section_and_setup(full_report):
    page, _, _ = full_report
    for section in ("setup", "headline", "missing-pieces", "performance", "robustness", "efficiency", "tradeoff"):
        assert f'<section id="{section}">' in page, section
        assert f'href="#{section}"' in page, section
    setup = re.search(r'<section id="setup">(.*?)</section>', page, flags=re.S).group(1)
    # Parameter counts come from efficiency.csv, the device from its device_name column.
    assert "1,500,000" in setup and "test cpu" in setup
    assert 'id="setup-versions"' in setup and "altair" in setup
    assert 'id="config"' in setup


def test_every_chart_shares_the_model_highlight(full_report):
    page, _, _ = full_report
    for name, spec in embedded_specs(page).items():
        assert {"name": "highlight", "value": None} in spec["params"], name
        assert "datum.label == highlight" in json.dumps(spec), name
    for label in MODELS.values():
        assert f'data-model="{label}"' in page


def test_advglue_levels_chart_has_intervals_per_level(full_report):
    page, _, _ = full_report
    spec = embedded_specs(page)["advglue_levels"]
    rows = next(iter(spec["datasets"].values()))
    levels = {row["level"] for row in rows}
    assert levels == {"all levels", "word"}
    assert all(row["ci_low"] <= row["value"] <= row["ci_high"] for row in rows)


def test_headline_marks_only_supported_bests(full_report):
    """Bold only where the column's verdict says best (tests/test_report_claims.py decides them); every marked
    cell says how it was decided."""
    page, _, _ = full_report
    headline = re.search(r'<table class="data" id="headline">(.*?)</table>', page, flags=re.S).group(1)
    assert "GLUE accuracy ↑" in headline and "Robustness drop (paired) ↓" in headline
    efficiency = re.search(r'<table class="data" id="headline-efficiency">(.*?)</table>', page, flags=re.S).group(1)
    assert "Prefill ms @ 256 ↓" in efficiency
    for table in (headline, efficiency):
        for css, title in re.findall(r'<td class="(best|tie)[^"]*" title="([^"]*)"', table):
            assert ("best, ahead of every other model" in title) == (css == "best"), title
    verdicts = re.search(r'id="headline-verdicts">(.*?)</ul>', page, flags=re.S).group(1)
    assert "Fine-tune tokens/s</b>: not ranked" in verdicts


def test_pareto_table_names_dominating_models(tmp_path):
    from kernels.report.build import pareto_table

    paths = table_paths(tmp_path)
    write_metrics(paths["metrics"], MODELS, TASKS)
    write_efficiency(paths["efficiency"], paths["slopes"], MODELS)
    table = pareto_table(load_report_data(paths, MODELS))
    assert list(table.index) == list(MODELS.values())
    for label, row in table.iterrows():
        if row["Pareto front (means)"] == "Pareto-optimal":
            assert row["Dominated by (means)"] == "–"
        else:
            assert row["Dominated by (means)"] != "–" and label not in row["Dominated by (means)"]
    assert (table["Pareto front (means)"] == "Pareto-optimal").any()
    assert "Dominated beyond the noise by" in table.columns


def section_html(page: str, section: str) -> str:
    return re.search(rf'<section id="{section}">(.*?)</section>', page, flags=re.S).group(1)


def table_rows(page: str, table_id: str) -> list[tuple[str, list[str]]]:
    """(row class, cell texts) of every body row of the table ``table_id``."""
    body = re.search(rf'<table class="data" id="{table_id}">.*?<tbody>(.*?)</tbody>', page, flags=re.S).group(1)
    rows = []
    for attributes, cells in re.findall(r"<tr([^>]*)>(.*?)</tr>", body, flags=re.S):
        css = re.search(r'class="([^"]*)"', attributes)
        rows.append((css.group(1) if css else "", [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>",
                                                                                       cells)]))
    return rows


def test_significance_table_marks_not_significant_pairs(full_report):
    page, _, _ = full_report
    section = section_html(page, "significance")
    header = re.search(r'<table class="data" id="significance-table"><thead>(.*?)</thead>', section, re.S).group(1)
    columns = [html.unescape(c).split(" ↑")[0] for c in re.findall(r"<th[^>]*>(.*?)</th>", header)]
    rows = table_rows(section, "significance-table")
    # 2 tasks x 2 whole sets (GLUE, AdvGLUE) x 2 seeds x 3 pairs; the word level is in the details table.
    assert len(rows) == 24
    for css, cells in rows:
        row = dict(zip(columns, cells))
        pair = (row["Model A"], row["Model B"])
        # Pairs follow the report's model order, also the one stored the other way round.
        assert pair in {("Transformer++", "GLA"), ("Transformer++", "MatMul-Free LM"), ("GLA", "MatMul-Free LM")}
        if pair == ("Transformer++", "MatMul-Free LM"):
            assert (css, row["Verdict"], row["b"], row["c"]) == ("", "significant", "40", "5")
            assert float(row["p"]) < 1e-3
        else:
            assert css == "ns" and row["Verdict"] == "n.s."
        if pair == ("GLA", "MatMul-Free LM"):
            assert (row["b"], row["c"]) == ("9", "14")
            assert float(row["A − B"]) == pytest.approx((9 - 14) / int(row["Items"]))
            assert row["p"] == "0.40"  # exact McNemar, 9 vs 14 discordant items
    assert len(table_rows(section, "significance-levels")) == 12  # the word level, in a <details> table


def test_non_significant_differences_noted_by_the_charts(full_report):
    page, _, _ = full_report
    glue = re.search(r'id="glue-significance">(.*?)</div>', page, flags=re.S).group(1)
    assert "sst2</b>, GLUE validation" in glue
    assert "significant: Transformer++ &gt; MatMul-Free LM" in glue
    assert "not significant: Transformer++ vs GLA (p = 0.83); GLA vs MatMul-Free LM (p = 0.40)" in glue
    assert 'id="advglue-significance"' in section_html(page, "robustness")
    # 2 tasks x 2 whole sets x 2 seeds x 3 pairs, of which Transformer++ vs MatMul-Free LM differ.
    assert "8 of 24 pairwise accuracy differences" in section_html(page, "headline")


def test_robustness_table_per_model_with_levels_counts_and_seeds(full_report):
    page, _, _ = full_report
    rows = [cells for _, cells in table_rows(page, "robustness-table")]
    # 3 models x 2 tasks x (all levels, word)
    assert len(rows) == 12
    first, word = rows[0], rows[1]
    assert first[:3] == ["Transformer++", "rte", "all levels"] and word[:3] == ["", "", "word"]
    assert re.fullmatch(r"0\.4\d\d", first[3])  # official AdvGLUE score, mean over seeds
    assert re.fullmatch(r"0\.\d{3} ± 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", first[4])  # accuracy over 2 seeds
    assert first[5] == "100" and word[5] == "100"
    # the most frequent prediction's share: none in this fixture (no predictions behind it)
    assert first[6] == "–" and word[6] == ""
    # Attack success rate 0.2 and 0.25 over the seeds: mean 0.225, sd 0.035, [the over-seeds interval], the
    # items attacked (clean original right) and skipped (original wrong).
    assert first[7] == "0.225 ± 0.035 [0.100, 0.350]" and first[8] == "80" and word[8] == "60"
    assert first[9] == "12" and word[9] == "9"
    # paired drop with its item count (none per level here), the unpaired drop, seeds
    assert first[10] == "0.250 ± 0.000 [0.200, 0.300]" and first[11] == "50" and word[10] == "–"
    assert first[12].startswith("0.300 ± 0.000") and first[13] == "2"
    header = re.search(r'<table class="data" id="robustness-table"><thead>(.*?)</thead>', page, flags=re.S).group(1)
    assert "Skipped (original wrong)" in header and "Robustness drop, paired" in header and "unpaired" in header


def test_method_table_keeps_methods_within_their_level(full_report):
    page, _, _ = full_report
    rows = [cells for _, cells in table_rows(page, "method-table")]
    assert len(rows) == 6  # 3 models x 2 tasks x one (word, TextFooler) cell
    assert rows[0][:4] == ["Transformer++", "rte", "word", "TextFooler"]


def test_per_model_means_weight_tasks_like_the_official_score():
    from kernels.report.tables import per_model_mean

    # MNLI has two sets: it counts once, as their mean ((0.5 + 0.7) / 2 = 0.6), next to SST-2's 0.9.
    frame = pd.DataFrame({"model": ["m"] * 3, "task": ["mnli", "mnli", "sst2"],
                          "split": ["mnli", "mnli-mm", "sst2"], "value": [0.5, 0.7, 0.9]})
    assert per_model_mean(frame).to_dict() == {"m": pytest.approx(0.75)}  # not (0.5 + 0.7 + 0.9) / 3 = 0.7


def test_intervals_are_one_kind_and_named():
    from kernels.report.charts import FIGURE_LIST
    from kernels.report.tables import INTERVAL_NAME, aggregate_seeds

    rows = pd.DataFrame({"model": "m", "seed": [0, 1, 2], "value": [0.5, 0.6, 0.7], "ci_low": [0.4, 0.5, 0.6],
                         "ci_high": [0.6, 0.7, 0.8], "n": 10})
    # several seeds and no two-level interval in the table: no interval at all, never a t-interval
    bare = aggregate_seeds(rows, ["model"]).iloc[0]
    assert bare["value"] == pytest.approx(0.6) and np.isnan(bare["ci_low"]) and np.isnan(bare["ci_high"])
    with_seeds = aggregate_seeds(rows.assign(ci_low_over_seeds=0.45, ci_high_over_seeds=0.75), ["model"]).iloc[0]
    assert (with_seeds["ci_low"], with_seeds["ci_high"]) == (0.45, 0.75)
    single = aggregate_seeds(rows.iloc[:1], ["model"]).iloc[0]
    assert (single["ci_low"], single["ci_high"]) == (0.4, 0.6)
    for figure in FIGURE_LIST:
        if figure.section in ("performance", "robustness") and figure.name != "advglue_scores":
            assert INTERVAL_NAME in figure.caption, figure.name


def test_mfu_chart_and_tables(full_report):
    page, _, _ = full_report
    spec = embedded_specs(page)["mfu"]
    assert "50 GFLOP/s (cpu, float32)" in json.dumps(spec["title"])
    rows = next(iter(spec["datasets"].values()))
    point = next(r for r in rows if r["model"] == "gla" and r["mode"] == "train" and r["seq_len"] == 128)
    assert point["mfu_percent"] == pytest.approx(100 * (1.0 + 0.01 * 128) / PEAK_GFLOPS)
    mfu = dict((cells[0], cells[1:]) for _, cells in table_rows(page, "mfu-table"))
    assert set(mfu) == set(MODELS.values()) and mfu["GLA"][0].endswith("%)")
    # one denominator for every model: the highest of the jobs' peaks (40, 45 and 50 GFLOP/s)
    efficiency = html.unescape(section_html(page, "efficiency"))
    assert ("peak measured before profiling: 50 GFLOP/s (cpu, float32), the same for every model: the highest of "
            "the profile jobs' measurements (40–50 GFLOP/s, 3 job(s))") in efficiency
    throughput = dict((cells[0], cells[1:]) for _, cells in table_rows(page, "finetune-throughput"))
    assert throughput["GLA"] == ["5,100", "5,100", "1"]


def test_missing_significance_and_mfu_render_with_notes(tmp_path):
    paths = table_paths(tmp_path)
    write_metrics(paths["metrics"], MODELS, TASKS)
    write_efficiency(paths["efficiency"], paths["slopes"], MODELS)
    old = pd.read_csv(paths["efficiency"]).drop(columns=["mfu", "peak_gflops"])  # profiled before MFU existed
    old.to_csv(paths["efficiency"], index=False)
    pd.read_csv(paths["slopes"]).drop(columns=["median_mfu", "max_mfu", "peak_gflops"]).to_csv(paths["slopes"],
                                                                                              index=False)
    html_path = tmp_path / "report" / "index.html"
    notes = build_report(paths, html_path, tmp_path / "report" / "figures", models=MODELS)
    assert any("significance table missing" in n for n in notes)
    assert any("no MFU values" in n for n in notes)
    page = html_path.read_text(encoding="utf-8")
    assert "No pairwise significance results" in section_html(page, "significance")
    assert 'id="glue-significance"' not in page
    assert embedded_specs(page)["mfu"]["mark"]["type"] == "text"  # the placeholder
    assert '<p id="mfu-table">No data.</p>' in page


def test_oriented_swaps_pairs_into_model_order():
    from kernels.report.significance import oriented

    table = pd.DataFrame({"model_a": ["mmfree", "gla"], "model_b": ["gla", "transformer_pp"],
                          "acc_a": [0.7, 0.5], "acc_b": [0.6, 0.8], "diff": [0.1, -0.3], "b": [12, 3], "c": [2, 33]})
    flipped = oriented(table, list(MODELS))
    assert flipped[["model_a", "model_b"]].values.tolist() == [["gla", "mmfree"], ["transformer_pp", "gla"]]
    assert flipped["diff"].tolist() == [-0.1, 0.3] and flipped["b"].tolist() == [2, 33]
    assert flipped["acc_a"].tolist() == [0.6, 0.8]


def test_significance_summary_over_seeds_says_when_only_some_seeds_differ():
    from kernels.report.significance import task_summaries
    from kernels.report.tables import ReportData

    rows = [dict(model_a="gla", model_b="transformer_pp", task="rte", seed=seed, dataset="glue", split="validation",
                 level="all", n=100, acc_a=0.5, acc_b=0.6, diff=-0.1, b=b, c=c, p_value=p, p_holm=p)
            for seed, b, c, p in ((0, 5, 15, 0.041), (1, 8, 12, 0.5), (2, 2, 20, 0.0001))]
    data = ReportData(tables={"significance": pd.DataFrame(rows)}, labels=dict(MODELS))
    (line,) = task_summaries(data, ("glue",))
    # Oriented into the model order (Transformer++ first): the difference flips sign, so Transformer++ is ahead.
    assert "significant in some seeds only: Transformer++ &gt; GLA in 2 of 3 seeds (p = 1.0e-04–0.50)" in line
    assert "not significant" not in line


def test_data_table_shows_the_training_examples_used(tmp_path):
    from kernels.report.setup import data_table
    from kernels.report.tables import ReportData, train_counts

    paths = []
    for task, rows in (("rte", 2490), ("sst2", 16000)):
        path = tmp_path / "glue" / task / "train.parquet"
        path.parent.mkdir(parents=True)
        pd.DataFrame({"idx": range(rows), "label": 0}).to_parquet(path)
        paths.append(path)
    data = ReportData(tables={}, labels={}, train_counts=train_counts(paths))
    table = data_table(data, {"tasks": ["sst2", "rte"], "data": {"max_train_examples": 16000}})
    cells = dict(zip(table["Task"], table["Training examples"]))
    # the counts used, not the subset cap ("≤ 16,000" for both before)
    assert cells == {"rte": "2,490", "sst2": "16,000 (seeded subset)"}
    unknown = data_table(ReportData(tables={}, labels={}), {"tasks": ["rte"], "data": {"max_train_examples": 16000}})
    assert unknown["Training examples"].tolist() == ["not known (cap 16,000)"]
    with pytest.raises(ValueError, match="validation.parquet: expected"):
        train_counts([tmp_path / "validation.parquet"])


def test_crossover_lengths_hand_computed():
    from kernels.report.tables import crossover_lengths

    lengths = [64, 128, 256, 512, 1024]
    latency = {"base": [1, 2, 4, 8, 16],
               "a": [3, 3, 5, 7, 9],        # faster from 512 on
               "b": [0.5, 3, 3, 9, 10],     # faster at 64 and 256 too, but only the tail from 1024 counts
               "c": [0.5, 1, 2, 4, 20],     # slower at the longest length: no crossover
               "d": [0.5, 1, 2, 4, None]}   # out of memory at the longest length: no crossover
    rows = []
    for model, values in latency.items():
        for length, ms in zip(lengths, values):
            rows.append(dict(model=model, mode="train", batch_size=1, seq_len=length, median_ms=ms,
                             p10_ms=ms and ms * 0.99, p90_ms=ms and ms * 1.01, repeats=5, peak_mem_source="tensors",
                             peak_mem_mb=length / (4 if model == "a" else 8), status="ok" if ms else "oom"))
    found = crossover_lengths(pd.DataFrame(rows), "base").set_index(["model", "quantity"])
    assert found.loc[("a", "faster"), "from_len"] == 512
    assert found.loc[("b", "faster"), "from_len"] == 1024
    assert np.isnan(found.loc[("c", "faster"), "from_len"]) and found.loc[("c", "faster"), "longest"] == 1024
    assert np.isnan(found.loc[("d", "faster"), "from_len"])
    # memory: a needs twice the baseline's, the others the same (not lighter)
    assert found.xs("lighter", level="quantity")["from_len"].isna().all()
    # the baseline running out of memory where a model runs is a win for the model
    frame = pd.DataFrame(rows)
    frame.loc[(frame["model"] == "base") & (frame["seq_len"] == 1024), ["median_ms", "status"]] = [np.nan, "oom"]
    again = crossover_lengths(frame, "base").set_index(["model", "quantity"])
    # (c is faster at every shorter length too; with equal memory there, it is lighter only at 1024)
    assert again.loc[("c", "faster"), "from_len"] == 64 and again.loc[("c", "lighter"), "from_len"] == 1024


def test_report_states_and_marks_the_crossover(full_report):
    page, _, _ = full_report
    statements = re.search(r'<ul id="crossover-statements">(.*?)</ul>', page, flags=re.S).group(1)
    # fixture: Transformer++ is fastest everywhere but runs out of memory training at 256 tokens
    assert ("train: GLA is faster than Transformer++ from 256 tokens and lighter than Transformer++ from 256 "
            "tokens; MatMul-Free LM is faster") in html.unescape(statements)
    assert "prefill: GLA is not faster than Transformer++ up to the longest length, 256" in html.unescape(statements)
    rows = dict(table_rows(page, "crossover"))
    assert rows
    spec = embedded_specs(page)["efficiency_scaling"]
    data = [row for rows_ in spec["datasets"].values() for row in rows_]
    marks = [row for row in data if row.get("kind") == "mark"]
    assert {(m["mode"], m["label"], m["seq_len"]) for m in marks} == {("train", "GLA", 256),
                                                                      ("train", "MatMul-Free LM", 256)}


def test_slopes_table_shows_r2_n_and_flags_unreliable_fits(full_report):
    page, _, _ = full_report
    cells = {row[0]: row[1:] for _, row in table_rows(page, "slopes")}
    # fixture: train/prefill latencies exactly linear over 3 lengths (Transformer++ train: 2 after its OOM)
    assert cells["GLA"][0] == "1.00 ± 0.00 (r² 1.00, n 3)"
    assert cells["Transformer++"][0] == "1.00 (r² 1.00, n 2) unreliable"
    assert "standard error &gt; 0.1 or n &lt; 3" in page
