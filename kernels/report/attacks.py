"""The report's "Fresh attacks" section: attacks that searched against each model itself (kernels.attacks),
next to AdvGLUE's transfer robustness.

Inputs are the attack stage's files (README, "Outputs"): ``results/attacks/{model}/{task}/seed{seed}/
{recipe}.json`` (TextAttack's summary), ``{recipe}.jsonl`` (one line per attacked example; used for the
paired tests), ``results/attacks/transfer/{task}/seed{seed}/universal_triggers.csv`` and, for the AdvGLUE
comparison, ``results/tables/metrics.csv``. Everything absent becomes a placeholder, never an error.
Paired significance: the same examples are attacked in every model (same seeded subset), so for two models
an example is a pair of outcomes "still correct under attack" (status ``failed``) or not; the exact McNemar
test and Holm's correction are kernels.evaluation.significance's.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from kernels.attacks.recipes import all_recipes
from kernels.evaluation.significance import holm_adjust, mcnemar_exact
from kernels.report.html_tables import html_table

SUMMARY_PATH = re.compile(r"(?:^|/)attacks/(?P<model>[^/]+)/(?P<task>[^/]+)/seed(?P<seed>\d+)/(?P<recipe>[^/.]+)\.json$")
TRANSFER_PATH = re.compile(r"(?:^|/)attacks/transfer/(?P<task>[^/]+)/seed(?P<seed>\d+)/universal_triggers\.csv$")
RECIPE_LABELS = {r.name: r.label for r in all_recipes()}  # the registry's (kernels.attacks.recipes)
ALPHA = 0.05
WHITE_BOX_NOTE = ("HotFlip and the universal triggers are white-box (gradients w.r.t. the input embeddings). "
                  "MatMul-Free LM trains through a straight-through estimator, whose gradients can be uninformative "
                  "(obfuscated gradients, arXiv 1802.00420): a low white-box success rate there is no evidence of "
                  "robustness, so read white-box numbers next to the black-box recipes.")
TEXTBUGGER_NOTE = ("TextBugger runs its character bugs only: its word bugs need GloVe neighbours and a Universal "
                   "Sentence Encoder, which are not available offline.")
WORD_NOTE = ("HotFlip and PWWS replace words by WordNet 3.0 synonyms only (their source is in each summary's `wordnet`); "
             "the character recipes leave the words' spelling readable but change tokens. The table below says what "
             "each recipe changes and where it departs from the recipe it follows.")


@dataclass
class AttackData:
    summaries: pd.DataFrame                 # one row per (model, task, seed, recipe)
    budget: pd.DataFrame                    # accuracy under attack vs query budget
    lines: pd.DataFrame                     # per attacked example: model, task, seed, recipe, idx, status
    transfer: pd.DataFrame                  # universal trigger transfer rows
    notes: list[str] = field(default_factory=list)


def _match(pattern: re.Pattern, path) -> dict | None:
    found = pattern.search(Path(path).as_posix())
    return found.groupdict() if found else None


def read_attack_results(summary_paths=(), transfer_paths=()) -> AttackData:
    """Summaries, their per-example lines (``{recipe}.jsonl`` beside each summary) and the transfer tables."""
    rows, budget, lines, notes = [], [], [], []
    for path in summary_paths:
        key = _match(SUMMARY_PATH, path)
        if key is None or key["recipe"] == "universal_trigger":
            continue
        key["seed"] = int(key["seed"])
        summary = json.loads(Path(path).read_text(encoding="utf-8"))
        # the path's seed is the fine-tuning seed; older summaries wrote the attack's seed in `seed`
        rows.append({**{k: v for k, v in summary.items() if not isinstance(v, (list, dict))}, **key})
        budget += [{**key, **point} for point in summary.get("accuracy_under_attack_vs_budget", [])]
        jsonl = Path(path).with_suffix(".jsonl")
        if jsonl.exists():
            for raw in jsonl.read_text(encoding="utf-8").splitlines():
                line = json.loads(raw)
                lines.append({**key, "idx": line["idx"], "status": line["status"]})
        else:
            notes.append(f"{jsonl} is missing: no paired test for {key['model']}/{key['task']}/{key['recipe']}.")
    transfer = []
    for path in transfer_paths:
        key = _match(TRANSFER_PATH, path)
        if key is None:
            continue
        frame = pd.read_csv(path)
        transfer.append(frame.assign(task=key["task"], seed=int(key["seed"])))
    return AttackData(summaries=pd.DataFrame(rows), budget=pd.DataFrame(budget), lines=pd.DataFrame(lines),
                      transfer=pd.concat(transfer, ignore_index=True) if transfer else pd.DataFrame(), notes=notes)


def _label(frame: pd.DataFrame, labels: dict[str, str], column: str = "model", out: str = "label") -> pd.DataFrame:
    frame = frame.copy()
    frame[out] = frame[column].map(lambda m: labels.get(m, m))
    return frame


def _recipe(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["recipe_label"] = frame["recipe"].map(lambda r: RECIPE_LABELS.get(r, r))
    return frame


# --------------------------------------------------------------------------------------------- tables

def _interval(value, low, high, digits: int = 3) -> str:
    if value is None or pd.isna(value):
        return "–"
    if low is None or pd.isna(low):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def summary_table(data: AttackData, labels: dict[str, str]) -> pd.DataFrame:
    """One row per model, task, seed and recipe: TextAttack's summary with its CIs."""
    s = data.summaries
    if s.empty:
        return pd.DataFrame()
    order = {model: position for position, model in enumerate(labels)}
    s = _recipe(_label(s, labels)).assign(order=s["model"].map(lambda m: order.get(m, len(order))))
    s = s.sort_values(["task", "recipe", "seed", "order", "model"])
    attack_seed = s["attack_seed"] if "attack_seed" in s else pd.Series([None] * len(s), index=s.index)
    return pd.DataFrame({
        "task": s["task"], "recipe": s["recipe_label"], "seed": s["seed"], "attack seed": attack_seed,
        "model": s["label"],
        "attacked / skipped": [f"{a + b} / {c}" for a, b, c in zip(s["successful"], s["failed"], s["skipped"])],
        "original accuracy": [_interval(*v) for v in zip(s["original_accuracy"], s["original_accuracy_ci_low"],
                                                          s["original_accuracy_ci_high"])],
        "accuracy under attack": [_interval(*v) for v in zip(s["accuracy_under_attack"],
                                                              s["accuracy_under_attack_ci_low"],
                                                              s["accuracy_under_attack_ci_high"])],
        "attack success rate": [_interval(*v) for v in zip(s["attack_success_rate"], s["attack_success_rate_ci_low"],
                                                            s["attack_success_rate_ci_high"])],
        "perturbed words %": [_interval(v, None, None, 1) for v in s["avg_perturbed_word_pct"]],
        "avg queries": [_interval(v, None, None, 1) for v in s["avg_queries"]],
        "queries / s": [_interval(v, None, None, 0) for v in s["queries_per_second"]],
        "budget": s["query_budget"],
    }).reset_index(drop=True)


def paired_tests(data: AttackData, labels: dict[str, str]) -> pd.DataFrame:
    """Exact McNemar between every two models on the examples both were attacked on (same task, seed,
    recipe), on "still correct under attack"; Holm-adjusted over every test of the table."""
    if data.lines.empty:
        return pd.DataFrame()
    rows = []
    correct = data.lines.assign(correct=data.lines["status"] == "failed")
    for (task, seed, recipe), group in correct.groupby(["task", "seed", "recipe"], sort=True):
        models = [m for m in labels if m in set(group["model"])] + sorted(set(group["model"]) - set(labels))
        for a, b in itertools.combinations(models, 2):
            pair = (group[group["model"] == a][["idx", "correct"]]
                    .merge(group[group["model"] == b][["idx", "correct"]], on="idx", suffixes=("_a", "_b")))
            if pair.empty:
                continue
            only_a = int((pair["correct_a"] & ~pair["correct_b"]).sum())
            only_b = int((~pair["correct_a"] & pair["correct_b"]).sum())
            rows.append({"task": task, "seed": seed, "recipe": RECIPE_LABELS.get(recipe, recipe),
                         "model A": labels.get(a, a), "model B": labels.get(b, b), "n": len(pair),
                         "acc. under attack A": pair["correct_a"].mean(), "acc. under attack B": pair["correct_b"].mean(),
                         "only A robust": only_a, "only B robust": only_b, "p": mcnemar_exact(only_a, only_b)})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p (Holm)"] = holm_adjust(table["p"])
        table["significant"] = table["p (Holm)"] < ALPHA
    return table


def advglue_accuracy(metrics: pd.DataFrame | None) -> pd.DataFrame:
    """AdvGLUE accuracy (whole set, all levels) per model, task and seed from results/tables/metrics.csv."""
    if metrics is None or metrics.empty:
        return pd.DataFrame()
    adv = metrics[(metrics["dataset"] == "advglue") & (metrics["metric"] == "accuracy")
                  & (metrics["level"] == "all") & (metrics.get("method", "all") == "all")]
    if "n" not in adv:
        adv = adv.assign(n=None)
    return adv[["model", "task", "seed", "split", "value", "ci_low", "ci_high", "n"]].rename(columns={"split": "set"})


def fresh_vs_advglue(data: AttackData, metrics: pd.DataFrame | None) -> pd.DataFrame:
    """Per model, task and (fine-tuning) seed: AdvGLUE (transfer) accuracy next to each recipe's accuracy under
    attack, each with its interval and its number of items (``advglue_n``, ``attack_n``): different items."""
    adv = advglue_accuracy(metrics)
    if adv.empty or data.summaries.empty:
        return pd.DataFrame()
    run = ["model", "task", "seed"]
    sets = adv.groupby(run)["set"].transform("nunique")
    both = adv[sets > 1].groupby(run, as_index=False).agg(value=("value", "mean"), n=("n", "sum"))
    adv = pd.concat([adv[sets == 1], both.assign(ci_low=None, ci_high=None)], ignore_index=True)  # mnli: both sets
    adv = adv.rename(columns={"value": "advglue_accuracy", "ci_low": "advglue_ci_low", "ci_high": "advglue_ci_high",
                              "n": "advglue_n"})[["model", "task", "seed", "advglue_accuracy", "advglue_ci_low",
                                                  "advglue_ci_high", "advglue_n"]]
    s = data.summaries
    fresh = s.assign(attack_n=s["total"] if "total" in s else s["successful"] + s["failed"] + s["skipped"])[
        ["model", "task", "seed", "recipe", "accuracy_under_attack", "accuracy_under_attack_ci_low",
         "accuracy_under_attack_ci_high", "original_accuracy", "attack_n"]]
    return fresh.merge(adv, on=["model", "task", "seed"])


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float | None, float | None]:
    """Exact binomial interval of a rate (None without trials)."""
    from scipy.stats import beta

    if trials <= 0:
        return None, None
    tail = (1 - level) / 2
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(beta.ppf(1 - tail, successes + 1, trials - successes))
    return low, high


def transfer_matrix(data: AttackData, labels: dict[str, str]) -> pd.DataFrame:
    """Per task, source and victim: the triggers' success rate pooled over target classes (and seeds), i.e.
    correctly classified examples of other classes turned into the target / all such (example, target)
    trials, with ``n`` (the trials) and an exact (Clopper-Pearson) 95% interval."""
    t = data.transfer
    if t.empty:
        return pd.DataFrame()
    if "n_success" not in t:  # transfer tables written before n_success existed
        t = t.assign(n_success=(t["attack_success_rate"].fillna(0) * t["n_correct"]).round())
    grouped = t.groupby(["task", "source_model", "victim_model"], as_index=False).agg(
        n=("n_correct", "sum"), n_success=("n_success", "sum"), target_rate_clean=("target_rate_clean", "mean"),
        target_rate_triggered=("target_rate_triggered", "mean"),
        triggers=("trigger", lambda v: " | ".join(dict.fromkeys(map(str, v)))))
    grouped["n"], grouped["n_success"] = grouped["n"].astype(int), grouped["n_success"].astype(int)
    grouped["attack_success_rate"] = [k / n if n else np.nan for k, n in zip(grouped["n_success"], grouped["n"])]
    bounds = [clopper_pearson(k, n) for k, n in zip(grouped["n_success"], grouped["n"])]
    grouped["ci_low"], grouped["ci_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
    grouped["cell"] = [("–" if not n else f"{k / n:.2f}") + f" (n={n})" for k, n in zip(grouped["n_success"], grouped["n"])]
    grouped["interval"] = ["" if lo is None else f"[{lo:.2f}, {hi:.2f}]" for lo, hi in bounds]
    grouped = _label(_label(grouped, labels, "source_model", "source"), labels, "victim_model", "victim")
    return grouped


def transfer_table(data: AttackData, labels: dict[str, str]) -> pd.DataFrame:
    """The transfer matrix as the section's table: each cell's rate, n and interval, and the whole triggers."""
    m = transfer_matrix(data, labels)
    if m.empty:
        return m
    order = {model: position for position, model in enumerate(labels)}
    m = m.assign(_s=m["source_model"].map(lambda x: order.get(x, len(order))),
                 _v=m["victim_model"].map(lambda x: order.get(x, len(order))))
    m = m.sort_values(["task", "_s", "source_model", "_v", "victim_model"], kind="stable")
    return pd.DataFrame({
        "task": m["task"], "trigger found on": m["source"], "applied to": m["victim"],
        "trigger success [95% CI]": [_interval(v, lo, hi, 2) for v, lo, hi in zip(m["attack_success_rate"], m["ci_low"],
                                                                                 m["ci_high"])],
        "successes / n": [f"{k} / {n}" for k, n in zip(m["n_success"], m["n"])],
        "target class before / after": [f"{a:.2f} / {b:.2f}" for a, b in zip(m["target_rate_clean"],
                                                                             m["target_rate_triggered"])],
        "triggers (one per target class)": m["triggers"],
    })


def recipe_table() -> pd.DataFrame:
    """What each recipe changes and where it departs from the recipe it follows (the registry's)."""
    return pd.DataFrame([{"recipe": r.label, "changes": r.changes, "access": r.access, "follows": r.reference,
                          "departures from it": "; ".join(r.departures)} for r in all_recipes()])


# --------------------------------------------------------------------------------------------- charts

def _placeholder(message: str, width: int) -> alt.Chart:
    return alt.Chart(pd.DataFrame({"message": [message]})).mark_text(fontSize=14, color="#777").encode(
        text="message:N").properties(width=width, height=80)


def accuracy_chart(data: AttackData, labels: dict[str, str], color: alt.Color, width: int, height: int,
                   opacity=alt.Undefined) -> alt.Chart:
    s = data.summaries
    if s.empty:
        return _placeholder("No attack summaries (attack.recipes empty?)", width)
    frame = _recipe(_label(s, labels))
    base = alt.Chart(frame).encode(
        x=alt.X("recipe_label:N", title=None), xOffset=alt.XOffset("label:N", sort=list(labels.values())),
        color=color, opacity=opacity)
    bars = base.mark_bar().encode(
        y=alt.Y("accuracy_under_attack:Q", title="accuracy under attack", scale=alt.Scale(domain=[0, 1])),
        tooltip=["label:N", "recipe_label:N", "seed:Q", alt.Tooltip("accuracy_under_attack:Q", format=".3f"),
                 alt.Tooltip("original_accuracy:Q", format=".3f"), "successful:Q", "failed:Q", "skipped:Q"])
    errors = base.mark_rule(color="black").encode(y="accuracy_under_attack_ci_low:Q",
                                                   y2="accuracy_under_attack_ci_high:Q")
    return (bars + errors).properties(width=width, height=height).facet(column=alt.Column("task:N", title="task"))


def asr_queries_chart(data: AttackData, labels: dict[str, str], color: alt.Color, width: int, height: int,
                      opacity=alt.Undefined) -> alt.Chart:
    s = data.summaries
    if s.empty:
        return _placeholder("No attack summaries", width)
    frame = _recipe(_label(s, labels)).dropna(subset=["attack_success_rate"])
    return alt.Chart(frame).mark_point(filled=True, size=90).encode(
        x=alt.X("avg_queries:Q", title="average queries (attacked examples)"),
        y=alt.Y("attack_success_rate:Q", title="attack success rate", scale=alt.Scale(domain=[0, 1])),
        color=color, opacity=opacity, shape=alt.Shape("recipe_label:N", title="recipe"),
        tooltip=["label:N", "task:N", "recipe_label:N", alt.Tooltip("attack_success_rate:Q", format=".3f"),
                 alt.Tooltip("attack_success_rate_ci_low:Q", format=".3f"),
                 alt.Tooltip("attack_success_rate_ci_high:Q", format=".3f"), alt.Tooltip("avg_queries:Q", format=".1f"),
                 alt.Tooltip("queries_per_second:Q", format=".0f")],
    ).properties(width=width, height=height).facet(column=alt.Column("task:N", title="task"))


def budget_chart(data: AttackData, labels: dict[str, str], color: alt.Color, width: int, height: int,
                 opacity=alt.Undefined) -> alt.Chart:
    b = data.budget
    if b.empty:
        return _placeholder("No budget curves", width)
    frame = _recipe(_label(b, labels))
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("budget:Q", title="query budget", scale=alt.Scale(type="log", nice=False)),
        y=alt.Y("accuracy_under_attack:Q", title="accuracy under attack", scale=alt.Scale(domain=[0, 1])),
        color=color, opacity=opacity, strokeDash=alt.StrokeDash("recipe_label:N", title="recipe"),
        detail="seed:N",
        tooltip=["label:N", "recipe_label:N", "budget:Q", alt.Tooltip("accuracy_under_attack:Q", format=".3f")],
    ).properties(width=width, height=height).facet(column=alt.Column("task:N", title="task"))


def transfer_chart(data: AttackData, labels: dict[str, str], width: int, height: int) -> alt.Chart:
    matrix = transfer_matrix(data, labels)
    if matrix.empty:
        return _placeholder("No universal triggers (universal_trigger not in attack.recipes)", width)
    order = list(labels.values())
    base = alt.Chart(matrix).encode(
        x=alt.X("victim:N", title="applied to", sort=order), y=alt.Y("source:N", title="trigger found on", sort=order))
    cells = base.mark_rect().encode(
        color=alt.Color("attack_success_rate:Q", title="trigger success", scale=alt.Scale(domain=[0, 1],
                                                                                          scheme="orangered")),
        tooltip=["source:N", "victim:N", alt.Tooltip("attack_success_rate:Q", format=".3f"),
                 alt.Tooltip("ci_low:Q", format=".3f", title="95% CI low"),
                 alt.Tooltip("ci_high:Q", format=".3f", title="95% CI high"), "n_success:Q", "n:Q",
                 alt.Tooltip("target_rate_clean:Q", format=".3f"), alt.Tooltip("target_rate_triggered:Q", format=".3f"),
                 "triggers:N"])
    text = base.mark_text(fontSize=11, dy=-7).encode(text="cell:N")
    interval = base.mark_text(fontSize=10, dy=8, color="#333").encode(text="interval:N")
    size = max(120, 100 * len(order))  # room for "0.43 (n=14)" and its interval in each cell
    return (cells + text + interval).properties(width=size, height=size).facet(column=alt.Column("task:N", title="task"))


def advglue_chart(data: AttackData, metrics: pd.DataFrame | None, labels: dict[str, str], color: alt.Color,
                  width: int, height: int, opacity=alt.Undefined) -> alt.Chart:
    frame = fresh_vs_advglue(data, metrics)
    if frame.empty:
        return _placeholder("No AdvGLUE accuracy or no attack summaries to compare", width)
    frame = _recipe(_label(frame, labels))
    # the diagonal from the same data (a facet's layers must share it)
    diagonal = alt.Chart(frame).mark_rule(color="#bbb", strokeDash=[4, 4]).encode(
        x=alt.datum(0), y=alt.datum(0), x2=alt.datum(1), y2=alt.datum(1))
    base = alt.Chart(frame).encode(
        x=alt.X("advglue_accuracy:Q", title="AdvGLUE accuracy, all its items (transfer)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("accuracy_under_attack:Q", title="accuracy under fresh attack, attacked examples",
                scale=alt.Scale(domain=[0, 1])), color=color, opacity=opacity)
    points = base.mark_point(filled=True, size=90).encode(
        shape=alt.Shape("recipe_label:N", title="recipe"),
        tooltip=["label:N", "task:N", "seed:Q", "recipe_label:N", alt.Tooltip("advglue_accuracy:Q", format=".3f"),
                 alt.Tooltip("advglue_n:Q", title="AdvGLUE items"), alt.Tooltip("accuracy_under_attack:Q", format=".3f"),
                 alt.Tooltip("attack_n:Q", title="attacked examples"), alt.Tooltip("original_accuracy:Q", format=".3f")])
    y_interval = base.mark_rule(strokeWidth=1).encode(y="accuracy_under_attack_ci_low:Q",
                                                      y2="accuracy_under_attack_ci_high:Q")
    x_interval = base.mark_rule(strokeWidth=1).encode(x="advglue_ci_low:Q", x2="advglue_ci_high:Q")
    layers = diagonal + y_interval + x_interval + points
    return layers.properties(width=width, height=height).facet(column=alt.Column("task:N", title="task"))


@dataclass(frozen=True)
class AttackFigure:
    name: str
    heading: str
    caption: str


ATTACK_FIGURES = [
    AttackFigure("attack_accuracy", "Accuracy under fresh attacks",
                 "TextAttack's accuracy under attack: the share of all examples (skipped ones included) still classified "
                 "correctly after the attack, per recipe and model; bars: 95% CI, bootstrap over examples."),
    AttackFigure("attack_asr_queries", "Attack success rate and queries",
                 "Attack success rate (successful / (successful + failed)) against the average number of queries "
                 "(every candidate scored counts, cache hits included), per model and recipe; hover for the CI."),
    AttackFigure("attack_budget", "Accuracy under attack vs query budget",
                 "What the accuracy under attack would have been with a smaller query budget (exact: a smaller budget "
                 "only truncates the same sequence of candidate lists)."),
    AttackFigure("trigger_transfer", "Universal trigger transfer",
                 "Each model's universal triggers (one per target class, found by gradient-guided search on held-out "
                 "validation examples) prepended to the attacked examples of every model: correctly classified "
                 "examples of the other classes turned into the target class, pooled over target classes; each cell "
                 "gives the rate, n (its trials) and the exact 95% (Clopper-Pearson) interval."),
    AttackFigure("attack_vs_advglue", "Fresh attacks vs AdvGLUE",
                 "Accuracy under attacks searched against each model (y: the seeded validation examples attacked, "
                 "clean errors included, 95% bootstrap CI) next to accuracy on AdvGLUE, whose perturbations were found "
                 "against BERT-style models (x: all items of the AdvGLUE set, every level, 95% bootstrap CI), for the "
                 "same fine-tuned model. The two axes are different items in different numbers (hover for both "
                 "counts), not a paired comparison: a point's side of the diagonal says which number is lower, not "
                 "that one attack is stronger; where the intervals overlap, the data do not tell them apart."),
]


def attack_charts(data: AttackData, metrics: pd.DataFrame | None, labels: dict[str, str], color: alt.Color,
                  width: int, height: int, opacity=alt.Undefined) -> dict[str, alt.TopLevelMixin]:
    """Every chart of the section by figure name (ATTACK_FIGURES); ``opacity``: the page's model highlight."""
    w = max(160, width // 2)
    return {
        "attack_accuracy": accuracy_chart(data, labels, color, w, height, opacity),
        "attack_asr_queries": asr_queries_chart(data, labels, color, w, height, opacity),
        "attack_budget": budget_chart(data, labels, color, w, height, opacity),
        "trigger_transfer": transfer_chart(data, labels, w, height),
        "attack_vs_advglue": advglue_chart(data, metrics, labels, color, w, height, opacity),
    }


def _html_table(frame: pd.DataFrame, table_id: str) -> str:
    if frame.empty:
        return "<p>No results.</p>"
    formatted = frame.copy()
    for column in formatted.columns:
        if formatted[column].dtype.kind == "f":
            formatted[column] = formatted[column].map(lambda v: "–" if pd.isna(v) else f"{v:.3g}")
    return html_table(formatted, table_id)


def attack_section_html(data: AttackData, labels: dict[str, str], chart_blocks: str = "") -> str:
    """The section body: notes, the charts' blocks (rendered by the caller), summary and paired-test tables."""
    notes = [WHITE_BOX_NOTE, TEXTBUGGER_NOTE, WORD_NOTE,
             "Both fields of a pair are attackable (as TextAttack; AdvGLUE usually perturbs one). The same seeded "
             "examples are attacked in every model, so models are compared on the same examples."] + data.notes
    sources = sorted({str(w) for w in data.summaries.get("wordnet", pd.Series(dtype=object)).dropna()})
    if sources:
        notes.append("WordNet synonyms from: " + "; ".join(sources) + ".")
    note_list = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    tests = paired_tests(data, labels)
    return (f'<ul class="notes">{note_list}</ul>{chart_blocks}'
            f'<h3>Summary (TextAttack\'s fields, 95% bootstrap CIs)</h3>'
            f'{_html_table(summary_table(data, labels), "attack-summary")}'
            f'<h3>Paired tests: still correct under the same attack, same examples</h3>'
            f'<p>Exact McNemar test per model pair, Holm-adjusted over the table (α = {ALPHA}).</p>'
            f'{_html_table(tests, "attack-significance")}'
            f'<h3>Universal triggers</h3>{_html_table(transfer_table(data, labels), "trigger-transfer")}'
            f'<h3>Recipes: what they change, where they depart from their source</h3>'
            f'{_html_table(recipe_table(), "attack-recipes")}')


# ------------------------------------------------------------------------------------ page assembly

FIGURE_NAMES = [figure.name for figure in ATTACK_FIGURES]


def render_attack_figures(data: AttackData, metrics: pd.DataFrame | None, style, figures_dir) -> list[tuple]:
    """Build the section's charts with the page's shared model colours and highlight parameter, write each as
    ``{name}.svg`` and ``{name}.png`` into ``figures_dir``; returns (figure, spec) pairs."""
    import vl_convert

    from kernels.io import atomic_path, write_text
    from kernels.report.charts import HIGHLIGHT
    from kernels.report.page import vegalite_version

    labels = dict(style.labels)
    charts = attack_charts(data, metrics, labels, style.model_color(), style.width, style.height,
                           style.highlight_opacity())
    version = vegalite_version()
    built = []
    for figure in ATTACK_FIGURES:
        spec = charts[figure.name].add_params(alt.param(name=HIGHLIGHT, value=None)).to_dict()
        write_text(Path(figures_dir) / f"{figure.name}.svg", vl_convert.vegalite_to_svg(spec, vl_version=version))
        with atomic_path(Path(figures_dir) / f"{figure.name}.png") as tmp:
            tmp.write_bytes(vl_convert.vegalite_to_png(spec, vl_version=version, scale=2))
        built.append((figure, spec))
    return built


def attack_section(summary_paths, transfer_paths, metrics: pd.DataFrame | None, style, figures_dir) -> str:
    """The body of the report's "Fresh attacks" section (its charts written to ``figures_dir``)."""
    from kernels.report.page import chart_block

    data = read_attack_results(summary_paths, transfer_paths)
    figures = render_attack_figures(data, metrics, style, figures_dir)
    blocks = "\n".join(chart_block(f.name, f.heading, f.caption, spec) for f, spec in figures)
    return attack_section_html(data, dict(style.labels), f'<div class="figures">{blocks}</div>')
