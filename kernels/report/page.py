"""The self-contained HTML page: inlined Vega/Vega-Lite/vega-embed, one embedded spec per chart."""

from __future__ import annotations

import html
import json
from functools import lru_cache

import altair as alt
import vl_convert

DEMO_BANNER = "tiny demo models trained from scratch on small data: numbers do not reflect the paper"

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; }
.banner { background: #fff3cd; border: 2px solid #e0a800; padding: 0.8rem 1rem; font-weight: 600; margin: 1rem 0; }
.notes { background: #f4f6f8; border-left: 4px solid #8a99a8; padding: 0.5rem 1rem; }
table.data { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
table.data th, table.data td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
table.data th { background: #f0f0f0; }
table.data td:first-child, table.data th:first-child { text-align: left; }
figure { margin: 1rem 0 2rem; } figcaption { color: #555; font-size: 0.9rem; max-width: 60rem; }
pre.config { background: #f7f7f7; border: 1px solid #ddd; padding: 1rem; overflow-x: auto; font-size: 0.85rem; }
"""


def vegalite_version() -> str:
    """The Vega-Lite version altair writes its specs for, as vl-convert names it (e.g. ``6.4``)."""
    return ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])


@lru_cache(maxsize=1)
def javascript_bundle() -> str:
    # vl-convert ships Vega, Vega-Lite and vega-embed; its bundle defines window.vegaEmbed with no network.
    bundle = vl_convert.javascript_bundle(vl_version=vegalite_version())
    return bundle.replace("</script", "<\\/script")


def script_json(obj) -> str:
    """JSON safe inside a <script> element (no closing tag can appear)."""
    return json.dumps(obj).replace("</", "<\\/")


def chart_block(name: str, heading: str, caption: str, spec: dict) -> str:
    return (f'<figure id="figure-{name}">\n<h3>{html.escape(heading)}</h3>\n'
            f'<div class="vis" id="vis-{name}"></div>\n'
            f'<script type="application/json" class="vega-spec" id="spec-{name}" data-target="vis-{name}">'
            f'{script_json(spec)}</script>\n'
            f'<figcaption>{html.escape(caption)} Static copies: <code>figures/{name}.svg</code>, '
            f'<code>figures/{name}.png</code>.</figcaption>\n</figure>')


EMBED_SCRIPT = """
document.querySelectorAll("script.vega-spec").forEach(function (node) {
  var spec = JSON.parse(node.textContent);
  vegaEmbed("#" + node.dataset.target, spec, {actions: false, renderer: "svg"}).catch(function (error) {
    document.getElementById(node.dataset.target).textContent = "chart failed to render: " + error;
  });
});
"""


def page(title: str, demo: bool, sections: list[str]) -> str:
    banner = f'<div class="banner" id="demo-banner">{html.escape(DEMO_BANNER)}</div>\n' if demo else ""
    body = "\n".join(sections)
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n"
            f"<script>{javascript_bundle()}</script>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f"{banner}{body}\n<script>{EMBED_SCRIPT}</script>\n</body>\n</html>\n")
