"""The report built from synthetic tidy tables: one offline page with every chart, static SVG/PNG figures,
and a partial input that renders with notes instead of failing."""

from __future__ import annotations

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
                        # As evaluate writes them: per level over all methods, per method over all levels.
                        whole = rows[-1]
                        rows.append(dict(whole, level="word", value=acc - 0.1, ci_low=acc - 0.2, ci_high=acc))
                        rows.append(dict(whole, method="TextFooler", value=acc - 0.15))
                if advglue:
                    rows.append(dict(model=model, task=task, seed=seed, dataset="advglue", split=task, level="all",
                                     method="all", metric="robustness_drop", value=0.25, ci_low=0.2, ci_high=0.3,
                                     n=50))
    pd.DataFrame(rows).to_csv(path, index=False)


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
    from kernels.profiling import fit_slopes

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
                                 flops_per_token=2e6, achieved_gflops=1.0, repeats=3, device_name="test cpu"))
    frame = pd.DataFrame(rows)
    frame.to_csv(path, index=False)
    fit_slopes(frame).to_csv(slopes_path, index=False)


def table_paths(directory: Path) -> dict[str, Path]:
    return {"metrics": directory / "metrics.csv", "scores": directory / "advglue_scores.csv",
            "throughput": directory / "finetune_throughput.csv", "efficiency": directory / "efficiency.csv",
            "slopes": directory / "efficiency_slopes.csv"}


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
    paths = table_paths(directory)
    write_metrics(paths["metrics"], MODELS, TASKS, seeds=(0, 1))
    write_scores(paths["scores"], MODELS, TASKS)
    write_throughput(paths["throughput"], MODELS, TASKS)
    write_efficiency(paths["efficiency"], paths["slopes"], MODELS)
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


def test_headline_marks_the_best_value(full_report):
    page, _, _ = full_report
    headline = re.search(r'<table class="data" id="headline">(.*?)</table>', page, flags=re.S).group(1)
    assert "GLUE accuracy ↑" in headline and "Robustness drop ↓" in headline
    assert headline.count('class="best') >= 3


def test_pareto_table_names_dominating_models(tmp_path):
    from kernels.report.build import pareto_table

    paths = table_paths(tmp_path)
    write_metrics(paths["metrics"], MODELS, TASKS)
    write_efficiency(paths["efficiency"], paths["slopes"], MODELS)
    table = pareto_table(load_report_data(paths, MODELS))
    assert list(table.index) == list(MODELS.values())
    for label, row in table.iterrows():
        if row["Pareto front"] == "Pareto-optimal":
            assert row["Dominated by"] == "–"
        else:
            assert row["Dominated by"] != "–" and label not in row["Dominated by"]
    assert (table["Pareto front"] == "Pareto-optimal").any()
