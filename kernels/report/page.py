"""The self-contained HTML page: inlined Vega/Vega-Lite/vega-embed, one embedded spec per chart, a model
highlighter shared by every chart, and the bookkeeping a browser test reads (``window.reportStatus``)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import lru_cache

import altair as alt
import vl_convert

from kernels.report.charts import HIGHLIGHT

DEMO_BANNER = "tiny demo models trained from scratch on small data: numbers do not reflect the paper"

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 1.5rem auto; max-width: 1240px;
       padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.3rem; } h2 { border-bottom: 2px solid #dde3ea; padding-bottom: 0.2rem; margin-top: 2.2rem; }
h3 { margin: 0.4rem 0; }
nav.toc { font-size: 0.9rem; margin: 0.4rem 0 1rem; } nav.toc a { margin-right: 1rem; color: #36648b; }
.banner { background: #fff3cd; border: 2px solid #e0a800; padding: 0.6rem 1rem; font-weight: 600; margin: 0.8rem 0; }
.notes { background: #f4f6f8; border-left: 4px solid #8a99a8; padding: 0.5rem 1rem 0.5rem 2rem; }
.highlighter { position: sticky; top: 0; z-index: 10; background: rgba(255,255,255,0.96); padding: 0.5rem 0;
               border-bottom: 1px solid #e3e3e3; font-size: 0.9rem; }
.highlighter button { border: 1px solid #bbb; background: #fff; border-radius: 1rem; padding: 0.15rem 0.7rem;
                      margin: 0 0.2rem; cursor: pointer; font: inherit; }
.highlighter button[aria-pressed="true"] { background: #222; color: #fff; border-color: #222; }
/* Vega draws legends without pointer events; with them on, a click on a legend entry reaches the views'
   click listener like a click on a mark, and picks that model. */
g.role-legend-symbol, g.role-legend-symbol *, g.role-legend-label, g.role-legend-label * {
  pointer-events: visiblePainted !important; cursor: pointer; }
.swatch { display: inline-block; width: 0.7rem; height: 0.7rem; border-radius: 50%; margin-right: 0.35rem;
          vertical-align: -0.05rem; }
.grid { display: flex; flex-wrap: wrap; gap: 1.5rem 2.5rem; align-items: flex-start; }
.grid > div { min-width: 0; } .grid p.hint { max-width: 36rem; }
.grid.compact { gap: 0.5rem 2rem; max-width: 36rem; } .grid.compact p.hint { max-width: 36rem; }
.table-scroll { overflow-x: auto; max-width: 100%; }
table.data { border-collapse: collapse; margin: 0.4rem 0 1.2rem; font-size: 0.88rem; }
table.data th, table.data td { border: 1px solid #ccc; padding: 0.25rem 0.55rem; text-align: right; }
table.data th { background: #f0f3f6; vertical-align: bottom; }
table.data td:first-child, table.data th:first-child, table.data .text { text-align: left; }
table.data td.best { font-weight: 700; background: #eaf4ea; }
table.data td.tie, .tie-key { background: #e9eef5; } table.data td.unranked { color: #9a9a9a; font-style: italic; }
table.data td:not(.text), #significance table.data td, #robustness-table td { white-space: nowrap; }
table.data tr.ns td { color: #9a9a9a; } table.data tr.ns td:last-child { font-style: italic; }
#significance table.data tr:not(.ns) td:last-child { font-weight: 600; color: #1d6b2f; }
.ns { color: #8a8a8a; } .significance-notes, .figures > div.significance-notes { max-width: 32rem; }
.significance-notes ul { font-size: 0.88rem; margin: 0.2rem 0 1rem; padding-left: 1.2rem; }
p.hint { color: #555; font-size: 0.88rem; margin: 0.2rem 0 0.6rem; }
figure { margin: 1.2rem 0 2rem; } figcaption { color: #555; font-size: 0.88rem; max-width: 62rem; }
.figures { display: flex; flex-wrap: wrap; gap: 0 1.5rem; align-items: flex-start; }
.figures > figure, .figures > div { flex: 0 1 auto; max-width: 100%; min-width: 0; }
.figures figcaption, .figures p.hint { max-width: 34rem; }
.vis { overflow-x: auto; }
ul.versions { list-style: none; padding: 0; margin: 0.3rem 0; max-width: 30rem; font-size: 0.88rem; }
ul.versions li { display: inline-block; margin: 0 0.9rem 0.2rem 0; }
details summary { cursor: pointer; color: #36648b; }
pre.config { background: #f7f7f7; border: 1px solid #ddd; padding: 1rem; overflow-x: auto; font-size: 0.82rem; }
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
    # <, > and & as JSON escapes: no label can then open a comment, close the script element or start
    # a character reference inside it (e.g. "<!--<script>" would otherwise break every chart).
    return json.dumps(obj).replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def chart_block(name: str, heading: str, caption: str, spec: dict) -> str:
    return (f'<figure id="figure-{name}">\n<h3>{html.escape(heading)}</h3>\n'
            f'<div class="vis" id="vis-{name}"></div>\n'
            f'<script type="application/json" class="vega-spec" id="spec-{name}" data-name="{name}" '
            f'data-target="vis-{name}">{script_json(spec)}</script>\n'
            f'<figcaption>{html.escape(caption)} Static copies: <code>figures/{name}.svg</code>, '
            f'<code>figures/{name}.png</code>.</figcaption>\n</figure>')


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    body: str


def table_of_contents(sections: list[Section]) -> str:
    links = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    return f'<nav class="toc">{links}</nav>'


def highlighter(colours: dict[str, str]) -> str:
    """Buttons that highlight one model in every chart (clicking a mark or a legend entry of the model does the
    same)."""
    buttons = "".join(
        f'<button type="button" data-model="{html.escape(label)}" aria-pressed="false">'
        f'<span class="swatch" style="background:{colour}"></span>{html.escape(label)}</button>'
        for label, colour in colours.items())
    return (f'<div class="highlighter" id="highlighter">Highlight a model in every chart: {buttons}'
            '<button type="button" data-model="" aria-pressed="true">all models</button></div>')


# Each chart declares a variable parameter HIGHLIGHT; setting it in every view at once is what makes one
# selection span the whole page (Vega views do not share signals). A click on a mark or a legend entry picks
# its model (datum.label), a second click on it or a click on empty space clears the highlight.
EMBED_SCRIPT = """
(function () {
  var signal = "__HIGHLIGHT__";
  var models = JSON.parse(document.getElementById("model-labels").textContent);
  var views = {};
  var status = {total: 0, rendered: [], failed: {}, highlight: null};
  window.reportStatus = status;
  window.reportViews = views;
  function setHighlight(label) {
    status.highlight = label || null;
    Object.keys(views).forEach(function (name) {
      try { views[name].signal(signal, status.highlight).runAsync(); } catch (error) { /* chart without models */ }
    });
    document.querySelectorAll("#highlighter button").forEach(function (button) {
      button.setAttribute("aria-pressed", String((button.dataset.model || null) === status.highlight));
    });
  }
  window.setHighlight = setHighlight;
  function pickedModel(item) {
    var datum = item && item.datum;
    if (!datum) { return null; }
    return models.indexOf(datum.label) >= 0 ? datum.label : null;
  }
  document.querySelectorAll("#highlighter button").forEach(function (button) {
    button.addEventListener("click", function () { setHighlight(button.dataset.model); });
  });
  var specs = document.querySelectorAll("script.vega-spec");
  status.total = specs.length;
  specs.forEach(function (node) {
    var name = node.dataset.name;
    var target = document.getElementById(node.dataset.target);
    vegaEmbed(target, JSON.parse(node.textContent), {actions: false, renderer: "svg"}).then(function (result) {
      views[name] = result.view;
      result.view.addEventListener("click", function (event, item) {
        var model = pickedModel(item);
        setHighlight(model === status.highlight ? null : model);
      });
      status.rendered.push(name);
      target.dataset.rendered = "true";
    }).catch(function (error) {
      status.failed[name] = String(error);
      target.dataset.rendered = "failed";
      target.textContent = "chart failed to render: " + error;
      console.error("chart " + name + " failed to render: " + error);
    });
  });
})();
""".replace("__HIGHLIGHT__", HIGHLIGHT)


def page(title: str, demo: bool, subtitle: str, colours: dict[str, str], sections: list[Section]) -> str:
    banner = f'<div class="banner" id="demo-banner">{html.escape(DEMO_BANNER)}</div>\n' if demo else ""
    body = "\n".join(f'<section id="{s.id}">\n<h2>{html.escape(s.title)}</h2>\n{s.body}\n</section>'
                     for s in sections)
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n"
            f"<script>{javascript_bundle()}</script>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f'<p class="hint">{html.escape(subtitle)}</p>\n{banner}{table_of_contents(sections)}\n'
            f"{highlighter(colours)}\n{body}\n"
            f'<script type="application/json" id="model-labels">{script_json(list(colours))}</script>\n'
            f"<script>{EMBED_SCRIPT}</script>\n</body>\n</html>\n")
