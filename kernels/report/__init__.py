"""The results report: one self-contained HTML page (sections: setup, headline table, what is missing,
GLUE performance, AdvGLUE robustness with a per-model table (official score, per-level accuracy with CIs and
item counts, attack success rate, robustness drop), pairwise significance (exact McNemar, non-significant
differences marked), efficiency scaling with MFU and fine-tuning throughput, trade-off with the Pareto front;
Altair charts with tooltips and one model highlight shared by all of them) plus every chart as SVG and PNG
under ``figures/`` with the fixed names in :data:`FIGURES`. ``kernels.report.browser`` renders it in headless
Chromium (and writes the README screenshot)."""

from kernels._lazy import lazy_exports

# submodule -> its public names; imported on first use (the table and report jobs then skip torch)
_EXPORTS = {
    "build": ["build_report", "headline_table", "load_report_data"],
    "charts": ["FIGURES"],
    "page": ["DEMO_BANNER"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
