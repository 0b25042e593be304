"""The report opened in real headless Chromium: every chart renders (an SVG with marks, no Vega error, nothing
on the console), tooltips and the model highlight work, and a full-page screenshot is kept as a CI artefact
(results/ci/report_screenshot.png)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kernels.report import DEMO_BANNER, FIGURES, build_report
from kernels.report.browser import (console_problems, load_report, open_browser, save_full_page_png,
                                    unavailable_reason)
from kernels.report.charts import DIMMED_OPACITY
from test_report import MODELS, TASKS, table_paths, write_metrics, write_tables

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "results" / "ci" / "report_screenshot.png"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RENDER_TIMEOUT_S = 30

if unavailable_reason():
    pytest.skip(f"headless browser check skipped: {unavailable_reason()}", allow_module_level=True)

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402  (only with selenium)
from selenium.webdriver.common.by import By  # noqa: E402


def wait_for(condition, timeout_s: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def browser():
    driver = open_browser()
    driver.set_page_load_timeout(RENDER_TIMEOUT_S)
    driver.set_script_timeout(RENDER_TIMEOUT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def full_page(tmp_path_factory):
    directory = tmp_path_factory.mktemp("browser_full")
    paths = write_tables(directory, MODELS, TASKS)
    html_path = directory / "report" / "index.html"
    config = {"run_name": "browser", "demo": True, "tasks": TASKS, "seeds": [0],
              "models": {m: {"label": l, "family": m} for m, l in MODELS.items()}}
    build_report(paths, html_path, directory / "report" / "figures", config=config, models=MODELS,
                 settings={"title": "Browser check", "width": 320, "height": 200})
    return html_path


def chart_mark_counts(driver) -> dict[str, int]:
    """Per chart: the number of drawn mark items in its SVG (0 when the chart has no SVG)."""
    return driver.execute_script("""
        var counts = {};
        document.querySelectorAll("div.vis").forEach(function (div) {
          var svg = div.querySelector("svg");
          counts[div.id.replace("vis-", "")] = svg ? svg.querySelectorAll(
            "g.mark-symbol path, g.mark-rect path, g.mark-line path, g.mark-rule line, g.mark-text text").length : 0;
        });
        return counts;""")


def test_every_chart_renders_without_errors(browser, full_page):
    status = load_report(browser, full_page, timeout_s=RENDER_TIMEOUT_S)
    assert status["failed"] == {}
    assert sorted(status["rendered"]) == sorted(FIGURES)
    counts = chart_mark_counts(browser)
    assert sorted(counts) == sorted(FIGURES)
    empty = [name for name, count in counts.items() if count < 3]
    assert not empty, f"charts drawn without marks: {empty}"
    assert browser.find_element(By.ID, "demo-banner").text == DEMO_BANNER
    for section in ("setup", "headline", "performance", "robustness", "significance", "efficiency", "tradeoff"):
        assert browser.find_element(By.ID, section).is_displayed(), section
    assert console_problems(browser) == []
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    png = save_full_page_png(browser, SCREENSHOT).read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 50_000


def highlight_of_every_view(driver) -> dict[str, object]:
    return driver.execute_script("""
        var values = {};
        Object.keys(window.reportViews).forEach(function (name) {
          values[name] = window.reportViews[name].signal("highlight");
        });
        return values;""")


def test_one_selection_highlights_a_model_in_every_chart(browser, full_page):
    load_report(browser, full_page, timeout_s=RENDER_TIMEOUT_S)
    browser.find_element(By.CSS_SELECTOR, '#highlighter button[data-model="GLA"]').click()
    wait_for(lambda: set(highlight_of_every_view(browser).values()) == {"GLA"}, what="GLA highlighted")
    assert sorted(highlight_of_every_view(browser)) == sorted(FIGURES)
    # The other models are drawn dimmed, GLA is not.
    opacities = browser.execute_script("""
        return Array.from(document.querySelectorAll("#vis-robustness_drop g.mark-rect path"))
          .map(function (p) { return parseFloat(p.getAttribute("opacity") || p.style.opacity || "1"); });""")
    assert min(opacities) == pytest.approx(DIMMED_OPACITY) and max(opacities) == pytest.approx(1.0)
    assert browser.find_element(By.CSS_SELECTOR, '#highlighter button[data-model="GLA"]').get_attribute(
        "aria-pressed") == "true"
    # Clicking a mark of another model in one chart moves the highlight in all of them.
    points = browser.find_elements(By.CSS_SELECTOR, "#vis-tradeoff g.mark-symbol path")
    labels = [browser.execute_script("return arguments[0].__data__.datum.label", p) for p in points]
    point, picked = next((p, label) for p, label in zip(points, labels) if label != "GLA")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", point)
    ActionChains(browser).move_to_element(point).click().perform()
    wait_for(lambda: set(highlight_of_every_view(browser).values()) == {picked}, what=f"{picked} highlighted")
    # So does clicking a model's entry in a legend.
    entry = next(e for e in browser.find_elements(By.CSS_SELECTOR, "#vis-tradeoff g.role-legend-label text")
                 if e.text == "GLA")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", entry)
    ActionChains(browser).move_to_element(entry).click().perform()
    wait_for(lambda: set(highlight_of_every_view(browser).values()) == {"GLA"}, what="GLA highlighted from a legend")
    browser.find_element(By.CSS_SELECTOR, '#highlighter button[data-model=""]').click()
    wait_for(lambda: set(highlight_of_every_view(browser).values()) == {None}, what="highlight cleared")
    assert console_problems(browser) == []


def hover_tooltip(driver, element) -> str:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    ActionChains(driver).move_to_element(element).perform()
    tooltip = wait_for(lambda: next((e for e in driver.find_elements(By.ID, "vg-tooltip-element")
                                     if e.is_displayed() and e.text), None), what="tooltip")
    return tooltip.text


def test_tooltip_shows_the_hovered_model(browser, full_page):
    load_report(browser, full_page, timeout_s=RENDER_TIMEOUT_S)
    bar = browser.find_elements(By.CSS_SELECTOR, "#vis-glue_accuracy g.mark-rect path")[0]
    text = hover_tooltip(browser, bar)
    assert "accuracy" in text and "95% CI low" in text
    assert any(label in text for label in MODELS.values())


def test_mfu_chart_tooltip_names_model_and_peak(browser, full_page):
    load_report(browser, full_page, timeout_s=RENDER_TIMEOUT_S)
    point = browser.find_elements(By.CSS_SELECTOR, "#vis-mfu g.mark-symbol path")[0]
    text = hover_tooltip(browser, point)
    assert "MFU %" in text and "MFU denominator GFLOP/s" in text
    assert any(label in text for label in MODELS.values())
    assert "measured dense matmul peak" in browser.find_element(By.ID, "vis-mfu").text


def test_headline_fits_the_page_at_1400_px_and_flags_single_class_models(browser, tmp_path):
    """At a 1,400 px window both headline tables fit the page (no horizontal scrolling), with the single-class
    column the demo has (GLA and MatMul-Free LM predict one class on RTE)."""
    import pandas as pd

    paths = write_tables(tmp_path, MODELS, TASKS)
    metrics = pd.read_csv(paths["metrics"])
    shares = [dict(model=m, task=t, seed=0, dataset=d, split="validation" if d == "glue" else t, level="all",
                   method="all", metric="majority_prediction_share", value=1.0 if m != "transformer_pp" and t == "rte"
                   else 0.6, n=100) for m in MODELS for t in TASKS for d in ("glue", "advglue")]
    pd.concat([metrics, pd.DataFrame(shares)], ignore_index=True).to_csv(paths["metrics"], index=False)
    html_path = tmp_path / "report" / "index.html"
    build_report(paths, html_path, tmp_path / "report" / "figures", config={"demo": True}, models=MODELS)
    browser.set_window_size(1400, 900)
    try:
        load_report(browser, html_path, timeout_s=RENDER_TIMEOUT_S)
        sizes = browser.execute_script("""
            return Array.from(document.querySelectorAll("section#headline table.data")).map(function (table) {
              return [table.id, table.getBoundingClientRect().width, table.parentElement.clientWidth,
                      document.documentElement.clientWidth];
            });""")
        for name, table, box, page in sizes:
            assert table <= box <= page, (name, table, box, page)
        assert [name for name, *_ in sizes] == ["headline", "headline-efficiency"]
        flags = browser.find_element(By.CSS_SELECTOR, "table#headline").text
        assert flags.count("⚠ rte GLUE, rte AdvGLUE") == 2
    finally:
        browser.set_window_size(1300, 900)


def test_wide_tables_scroll_in_their_box_and_the_page_never_scrolls_sideways(browser, tmp_path):
    """Every table, the fresh attacks' recipe table (long prose per cell) included, stays inside the page at
    1300 px: a wide one scrolls in its own box, text cells wrap. (The recipe table once made the page 5,753 px
    wide, pushing every section's right edge off the screen.)"""
    from test_attacks_report import write_run

    paths = write_tables(tmp_path, MODELS, TASKS)
    summaries = [write_run(tmp_path, model, ["successful"] * 3 + ["failed"] * 3, recipe=recipe)
                 for model in MODELS for recipe in ("deepwordbug", "pwws")]
    html_path = tmp_path / "report" / "index.html"
    build_report(paths, html_path, tmp_path / "report" / "figures", config={"demo": True}, models=MODELS,
                 attacks={"summaries": summaries, "transfer": []})
    browser.set_window_size(1300, 900)  # the report's own screenshot width (kernels.report.browser.WINDOW)
    try:
        load_report(browser, html_path, timeout_s=RENDER_TIMEOUT_S)
        page, scroll, escaping = browser.execute_script("""
            var width = document.documentElement.clientWidth;
            var out = [];
            document.querySelectorAll("table.data").forEach(function (table) {
              var box = table.parentElement;
              var right = Math.min(table.getBoundingClientRect().right, box.getBoundingClientRect().right);
              if (right > width + 1 || getComputedStyle(box).overflowX !== "auto") { out.push(table.id); }
            });
            return [width, document.documentElement.scrollWidth, out];""")
        assert escaping == [] and scroll <= page, (page, scroll, escaping)
        assert browser.find_element(By.ID, "attack-recipes").is_displayed()
    finally:
        browser.set_window_size(1300, 900)


def test_not_significant_pairs_are_muted(browser, full_page):
    load_report(browser, full_page, timeout_s=RENDER_TIMEOUT_S)
    colours = browser.execute_script("""
        var rows = document.querySelectorAll("#significance-table tbody tr");
        return Array.from(rows).map(function (row) {
          return [row.className, getComputedStyle(row.cells[0]).color, row.cells[row.cells.length - 1].textContent];
        });""")
    muted = {colour for css, colour, verdict in colours if css == "ns"}
    plain = {colour for css, colour, verdict in colours if css != "ns"}
    assert muted and plain and not muted & plain
    assert {verdict for css, _, verdict in colours if css == "ns"} == {"n.s."}
    assert {verdict for css, _, verdict in colours if css != "ns"} == {"significant"}


def test_partial_report_renders_and_says_what_is_missing(browser, tmp_path):
    """One model, one task, no AdvGLUE, no efficiency: every chart still renders (placeholders included)."""
    paths = table_paths(tmp_path)
    write_metrics(paths["metrics"], ["gla"], ["sst2"], advglue=False)
    html_path = tmp_path / "report" / "index.html"
    build_report(paths, html_path, tmp_path / "report" / "figures", config={"demo": False}, models={"gla": "GLA"})
    status = load_report(browser, html_path, timeout_s=RENDER_TIMEOUT_S)
    assert status["failed"] == {} and sorted(status["rendered"]) == sorted(FIGURES)
    assert all(count > 0 for count in chart_mark_counts(browser).values())
    missing = browser.find_element(By.ID, "missing").text
    assert "No AdvGLUE results" in missing and "efficiency table missing" in missing
    assert console_problems(browser) == []
