"""The results report: one self-contained HTML page (Altair charts, headline table, the config used)
plus every chart as SVG and PNG under ``figures/`` with the fixed names in :data:`FIGURES`."""

from kernels.report.build import build_report, headline_table, load_report_data
from kernels.report.charts import FIGURES
from kernels.report.page import DEMO_BANNER

__all__ = ["DEMO_BANNER", "FIGURES", "build_report", "headline_table", "load_report_data"]
