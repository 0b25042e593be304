"""HTML tables of the report: every header and cell escaped, words left-aligned (and allowed to wrap),
numbers right-aligned, each table in a box that scrolls sideways rather than widening the page."""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np
import pandas as pd

from kernels.report.claims import better_direction


def _format(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or pd.isna(value):
        return "–"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{int(value):,}"
    value = float(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3f}"


TEXT_CLASS = ' class="text"'
NUMBER_TEXT = re.compile(r"^([+\-−]?\d|–$)")


def _is_text(value: Any) -> bool:
    """Words are left-aligned; numbers, also when pre-formatted as text ("0.41 [0.30, 0.52]", "+0.012"), are not."""
    return isinstance(value, str) and not NUMBER_TEXT.match(value)


def html_table(table: pd.DataFrame, table_id: str, marks: dict[str, dict[int, str]] | None = None,
               row_classes: list[str] | None = None, titles: dict[str, dict[int, str]] | None = None) -> str:
    """An HTML table, every header and cell escaped. ``marks``: per column, the CSS class of some rows' cells
    (by position; ``best``: bold, ``tie``: shaded, ``unranked``), and with it the column headers carry the
    better end (↑ / ↓); ``titles``: hover text of some cells; ``row_classes`` gives each row a CSS class (e.g.
    ``ns`` for muted, not significant rows)."""
    if table.empty:
        return f'<p id="{html.escape(table_id)}">No data.</p>'
    if table.index.name is not None:
        table = table.reset_index()
    marks, titles = marks or {}, titles or {}
    arrows = bool(marks)
    text_columns = {c for c in table.columns if table[c].map(_is_text).all()}
    header = "".join(f"<th{TEXT_CLASS if c in text_columns else ''}>{html.escape(str(c))}"
                     f"{_arrow(c) if arrows else ''}</th>" for c in table.columns)
    rows = []
    for i, record in enumerate(table.itertuples(index=False)):
        cells = []
        for column, value in zip(table.columns, record):
            mark = marks.get(column, {}).get(i)
            classes = [n for n, on in ((mark, mark is not None), ("text", _is_text(value))) if on]
            attribute = f' class="{" ".join(classes)}"' if classes else ""
            title = titles.get(column, {}).get(i)
            attribute += f' title="{html.escape(title)}"' if title else ""
            cells.append(f"<td{attribute}>{html.escape(_format(value))}</td>")
        row_class = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        rows.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    return (f'<div class="table-scroll"><table class="data" id="{html.escape(table_id)}"><thead><tr>{header}</tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>")


def _arrow(column: Any) -> str:
    return {"max": " ↑", "min": " ↓"}.get(better_direction(str(column)) or "", "")
