"""The results report: one self-contained HTML page (sections: setup, headline table, what is missing,
GLUE performance, AdvGLUE robustness, efficiency scaling, trade-off with the Pareto front; Altair charts with
tooltips and one model highlight shared by all of them) plus every chart as SVG and PNG under ``figures/``
with the fixed names in :data:`FIGURES`. ``kernels.report.browser`` renders it in headless Chromium."""

from kernels.report.build import build_report, headline_table, load_report_data
from kernels.report.charts import FIGURES
from kernels.report.page import DEMO_BANNER

__all__ = ["DEMO_BANNER", "FIGURES", "build_report", "headline_table", "load_report_data"]
