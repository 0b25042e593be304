"""The summary of one recipe's attack (rule ``attack_summary``): TextAttack's rates with bootstrap CIs,
computed from the per-example lines and the search's own record (``{recipe}.search.json``, written by rule
``attack`` as the summary without CIs). Kept apart from the search so that the bootstrap's settings never
re-run a search; the result is the file that one job doing both would write."""

from __future__ import annotations

import json
from pathlib import Path

from kernels.attacks.runner import summarize
from kernels.io import write_json


def read_lines(path: str | Path) -> list[dict]:
    lines = []
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            lines.append(json.loads(raw))
        except ValueError as err:
            raise ValueError(f"{path}: line {number} is not valid JSON ({err})") from None
    return lines


def summary_job(*, jsonl_path: str | Path, search_path: str | Path, summary_path: str | Path,
                bootstrap_samples: int, bootstrap_seed: int, settings_read: list[str] | None = None) -> dict:
    """Write ``summary_path``: the rates of ``jsonl_path`` with ``bootstrap_samples`` resamples (seeded by
    ``bootstrap_seed``, the attack's seed), plus every other field of the search record. ``settings_read``
    (when given) keeps only the settings the recipe read in the summary's ``settings``."""
    search = json.loads(Path(search_path).read_text(encoding="utf-8"))
    lines = read_lines(jsonl_path)
    summary = summarize(lines, query_budget=search["query_budget"], seconds=sum(ln["seconds"] for ln in lines),
                        bootstrap_samples=int(bootstrap_samples), bootstrap_seed=int(bootstrap_seed))
    for key, value in search.items():
        summary.setdefault(key, value)
    if settings_read is not None and isinstance(summary.get("settings"), dict):
        summary["settings"] = {k: v for k, v in summary["settings"].items() if k in set(settings_read)}
    write_json(summary_path, summary)
    return summary
