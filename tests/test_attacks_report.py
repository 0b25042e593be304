"""The report's "Fresh attacks" section (kernels.report.attacks) on attack files in the contract's layout."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import pytest

from kernels.attacks.runner import summarize
from kernels.evaluation.significance import mcnemar_exact
from kernels.report.attacks import (ATTACK_FIGURES, attack_charts, attack_section_html, clopper_pearson,
                                    fresh_vs_advglue, paired_tests, read_attack_results, summary_table,
                                    transfer_matrix)

LABELS = {"transformer_pp": "Transformer++", "gla": "GLA"}


def write_run(root, model, statuses, recipe="deepwordbug", task="sst2"):
    lines = [{"idx": i, "status": s, "words_changed": int(s == "successful"), "num_words": 5, "queries": 10,
              "cache_hits": 2, "first_success_query": 5 if s == "successful" else None, "seed": 0, "attack_seed": 765}
             for i, s in enumerate(statuses)]
    out = root / "attacks" / model / task / "seed0"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{recipe}.jsonl").write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    summary = summarize(lines, query_budget=50, seconds=1.0, bootstrap_samples=50, bootstrap_seed=0)
    (out / f"{recipe}.json").write_text(json.dumps({**summary, "seed": 0, "attack_seed": 765}))
    return out / f"{recipe}.json"


def advglue_metrics(values):
    return pd.DataFrame([{"model": m, "task": "sst2", "seed": 0, "dataset": "advglue", "split": "sst2",
                          "level": "all", "method": "all", "metric": "accuracy", "value": v, "ci_low": v - 0.1,
                          "ci_high": v + 0.1, "n": 148} for m, v in values.items()])


@pytest.fixture()
def data(tmp_path):
    a = write_run(tmp_path, "transformer_pp", ["failed"] * 6 + ["successful"] * 2 + ["skipped"] * 2)
    b = write_run(tmp_path, "gla", ["successful"] * 6 + ["failed"] * 1 + ["successful"] + ["skipped"] * 2)
    transfer = tmp_path / "attacks" / "transfer" / "sst2" / "seed0"
    transfer.mkdir(parents=True)
    pd.DataFrame([{"source_model": s, "victim_model": v, "target": t, "trigger": f"unforgettable masterpiece{t}",
                   "n": 4, "n_correct": 4, "n_success": t + 1, "accuracy_clean": 0.7, "accuracy_triggered": 0.5,
                   "target_rate_clean": 0.2, "target_rate_triggered": 0.5, "attack_success_rate": 0.25 * (t + 1)}
                  for s in LABELS for v in LABELS for t in (0, 1)]).to_csv(transfer / "universal_triggers.csv",
                                                                         index=False)
    return read_attack_results([a, b], [transfer / "universal_triggers.csv"])


def test_summary_and_paired_tests_use_the_same_examples(data):
    table = summary_table(data, LABELS)
    assert list(table["model"]) == ["Transformer++", "GLA"]  # the configured order
    assert set(table["seed"]) == {0} and set(table["attack seed"]) == {765}  # the model's seed, then the attack's
    tpp = table[table["model"] == "Transformer++"].iloc[0]
    assert tpp["attacked / skipped"] == "8 / 2" and tpp["accuracy under attack"].startswith("0.600")
    tests = paired_tests(data, LABELS)
    row = tests.iloc[0]
    # examples 0-5: Transformer++ robust, GLA not; 6: GLA robust only; 7: neither; 8-9 skipped by both
    assert (row["model A"], row["only A robust"], row["only B robust"], row["n"]) == ("Transformer++", 6, 1, 10)
    assert row["p"] == pytest.approx(mcnemar_exact(6, 1)) and row["p (Holm)"] == pytest.approx(row["p"])


def test_transfer_matrix_and_advglue_comparison(data):
    matrix = transfer_matrix(data, LABELS)
    # pooled over the two target classes: (1 + 2) successes of 4 + 4 trials, with n and an exact interval
    assert len(matrix) == 4 and matrix["attack_success_rate"].tolist() == [0.375] * 4 and set(matrix["n"]) == {8}
    assert set(matrix["cell"]) == {"0.38 (n=8)"} and set(matrix["interval"]) == {"[0.09, 0.76]"}
    low, high = clopper_pearson(3, 8)
    assert (matrix["ci_low"] == low).all() and low == pytest.approx(0.0852, abs=1e-4)
    assert high == pytest.approx(0.7551, abs=1e-4) and clopper_pearson(0, 4)[0] == 0 and clopper_pearson(4, 4)[1] == 1
    both = fresh_vs_advglue(data, advglue_metrics({"transformer_pp": 0.4, "gla": 0.3})).set_index("model")
    assert both.loc["gla", "advglue_accuracy"] == 0.3 and both.loc["transformer_pp", "accuracy_under_attack"] == 0.6
    assert (both["attack_n"] == 10).all() and (both["advglue_n"] == 148).all()


def test_fresh_vs_advglue_keeps_each_sets_interval_and_averages_mnlis_two(tmp_path):
    sst2 = write_run(tmp_path, "gla", ["failed", "successful"])
    mnli = write_run(tmp_path, "gla", ["failed", "failed"], task="mnli")
    metrics = pd.concat([advglue_metrics({"gla": 0.3}),
                         advglue_metrics({"gla": 0.5}).assign(task="mnli", split="mnli", n=121),
                         advglue_metrics({"gla": 0.7}).assign(task="mnli", split="mnli-mm", n=162)])
    both = fresh_vs_advglue(read_attack_results([sst2, mnli], []), metrics).set_index("task")
    assert both.loc["sst2", "advglue_ci_low"] == pytest.approx(0.2) and both.loc["sst2", "advglue_n"] == 148
    assert both.loc["mnli", "advglue_accuracy"] == pytest.approx(0.6) and both.loc["mnli", "advglue_n"] == 283
    assert pd.isna(both.loc["mnli", "advglue_ci_low"])


def test_fresh_vs_advglue_joins_on_the_models_seed_even_from_old_summaries(tmp_path):
    """The join is on the fine-tuning seed: a summary whose `seed` holds the attack's seed (765, as files of
    the attack stage once did) still joins through its path (seed0)."""
    path = write_run(tmp_path, "gla", ["failed", "successful"])
    path.write_text(json.dumps({**json.loads(path.read_text()), "seed": 765}))
    data = read_attack_results([path], [])
    assert data.summaries["seed"].tolist() == [0]
    assert len(fresh_vs_advglue(data, advglue_metrics({"gla": 0.3}))) == 1
    chart = json.dumps(attack_charts(data, advglue_metrics({"gla": 0.3}), LABELS, alt.Color("label:N"), 300, 200)
                       ["attack_vs_advglue"].to_dict())
    assert "No AdvGLUE accuracy" not in chart and "advglue_ci_low" in chart


def test_section_tables_say_n_keep_whole_triggers_and_list_the_recipes(data):
    body = attack_section_html(data, LABELS)
    assert "unforgettable masterpiece0 | unforgettable masterpiece1" in body  # not cut at 50 characters
    assert "0.38 [0.09, 0.76]" in body and "3 / 8" in body
    assert 'id="attack-recipes"' in body and "pwws_ren_2019" in body and "characters" in body
    caption = next(f.caption for f in ATTACK_FIGURES if f.name == "attack_vs_advglue")
    assert "hurts more" not in caption and "not a paired comparison" in caption


def test_every_chart_is_valid_vega_lite_and_the_section_renders(data):
    color = alt.Color("label:N")
    charts = attack_charts(data, None, LABELS, color, 300, 200)
    assert set(charts) == {f.name for f in ATTACK_FIGURES}
    for chart in charts.values():
        assert "$schema" in chart.to_dict()
    body = attack_section_html(data, LABELS)
    assert "attack-summary" in body and "straight-through" in body and "not available offline" in body


def test_missing_results_become_placeholders():
    empty = read_attack_results([], [])
    charts = attack_charts(empty, None, LABELS, alt.Color("label:N"), 300, 200)
    assert all("No " in json.dumps(c.to_dict()) for c in charts.values())
    assert summary_table(empty, LABELS).empty and paired_tests(empty, LABELS).empty


def test_section_writes_every_figure_with_the_shared_highlight(data, tmp_path):
    from kernels.report.attacks import FIGURE_NAMES, attack_section
    from kernels.report.charts import HIGHLIGHT, Style

    summaries = sorted((tmp_path / "attacks").glob("*/sst2/seed0/deepwordbug.json"))
    transfer = [tmp_path / "attacks/transfer/sst2/seed0/universal_triggers.csv"]
    out = tmp_path / "figures"
    body = attack_section(summaries, transfer, None, Style(300, 200, LABELS), out)
    for name in FIGURE_NAMES:
        assert (out / f"{name}.svg").read_text().startswith("<svg") and (out / f"{name}.png").stat().st_size > 0
        assert f'id="spec-{name}"' in body
    assert f'"name": "{HIGHLIGHT}"' in body


def test_report_page_has_the_fresh_attacks_section_after_robustness(data, tmp_path):
    from kernels.report import FIGURES, build_report
    from kernels.report.attacks import FIGURE_NAMES

    summaries = sorted((tmp_path / "attacks").glob("*/sst2/seed0/deepwordbug.json"))
    transfer = [tmp_path / "attacks/transfer/sst2/seed0/universal_triggers.csv"]
    html_path, figures = tmp_path / "report/index.html", tmp_path / "report/figures"
    build_report({}, html_path, figures, models=LABELS, attacks={"summaries": summaries, "transfer": transfer})
    page = html_path.read_text(encoding="utf-8")
    assert page.index('id="robustness"') < page.index('id="attacks"') < page.index('id="significance"')
    assert all((figures / f"{name}.svg").exists() for name in [*FIGURES, *FIGURE_NAMES])
    assert "Fresh attacks" in page and "attack-significance" in page
    # without the attack stage (attacks=None) the page has no such section
    build_report({}, html_path, figures, models=LABELS)
    assert 'id="attacks"' not in html_path.read_text(encoding="utf-8")
