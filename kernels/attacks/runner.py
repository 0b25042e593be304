"""Attack a list of examples with one recipe: per-example JSON lines appended as they are found (a re-run
resumes after the last complete line), then TextAttack's summary with bootstrap CIs and the accuracy
under attack as a function of the query budget.

Line schema (README, "Outputs"): ``idx, text_a, text_b, perturbed_text_a, perturbed_text_b, label,
original_pred, perturbed_pred, queries, words_changed, status, seed`` (the fine-tuning seed of the attacked
model), plus ``attack_seed`` (the seed of the attack's random choices), ``num_words``,
``cache_hits`` (queries answered from the cache; the model ran ``queries - cache_hits`` texts),
``first_success_query`` (number of the query that first found a successful candidate) and ``seconds``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kernels.attacks.attack import FAILED, SKIPPED, SUCCESSFUL, Attack
from kernels.evaluation.metrics import nan_percentile_interval
from kernels.io import set_aside, write_json

LINE_FIELDS = ("idx", "text_a", "text_b", "perturbed_text_a", "perturbed_text_b", "label", "original_pred",
               "perturbed_pred", "queries", "words_changed", "status", "seed")


def example_rng(seed: int, idx: int) -> np.random.Generator:
    # One stream per example: results do not depend on the order or on where a run resumed.
    return np.random.default_rng([int(seed), int(idx)])


def select_examples(frame: pd.DataFrame, count: int | None, seed: int, skip: int = 0) -> pd.DataFrame:
    """A seeded subset of ``count`` rows (the same for every model, so attacks pair up across models);
    ``skip`` leaves out the first rows of the same permutation (the trigger search uses rows after them)."""
    order = np.random.default_rng(int(seed)).permutation(len(frame))
    stop = None if count is None else skip + int(count)
    return frame.iloc[order[skip:stop]].reset_index(drop=True)


def outcome_line(row, outcome, model_seed: int, attack_seed: int, seconds: float) -> dict:
    final = outcome.final.text
    perturbed = outcome.status == SUCCESSFUL
    text_b = None if pd.isna(row.get("text_b")) else row.get("text_b")
    return {
        "idx": int(row["idx"]), "text_a": row["text_a"], "text_b": text_b,
        "perturbed_text_a": final.text_a if perturbed else None,
        "perturbed_text_b": (final.text_b if perturbed else None),
        "label": int(row["label"]), "original_pred": outcome.original.pred,
        "perturbed_pred": outcome.final.pred, "queries": outcome.queries,
        "words_changed": final.words_changed if perturbed else 0, "status": outcome.status, "seed": int(model_seed),
        "attack_seed": int(attack_seed), "num_words": final.num_words, "cache_hits": outcome.cache_hits,
        "first_success_query": outcome.first_success_query, "seconds": round(seconds, 6),
    }


def fingerprint(**settings) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _progress_stamp(meta_path: Path) -> tuple[str | None, str | None]:
    """(fingerprint, None) from the settings file beside a progress file, (None, None) when there is none,
    (None, why) when it cannot be read."""
    if not meta_path.exists():
        return None, None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: JSONDecodeError and UnicodeDecodeError
        return None, f"{type(err).__name__}: {err}"
    if not isinstance(meta, dict) or not isinstance(meta.get("fingerprint"), str):
        return None, "no 'fingerprint' in it"
    return meta["fingerprint"], None


def read_progress(path: Path, meta_path: Path, stamp: str, expected_idx: list[int]) -> list[dict]:
    """Complete lines of an earlier run with the same settings; anything else starts over. A settings file
    (``.meta.json``) that cannot be read is set aside with a warning naming it, together with the lines it
    vouched for, and the job starts from the first example: a damaged file never blocks the job."""
    recorded, damaged = _progress_stamp(meta_path)
    if damaged:
        set_aside(meta_path, damaged)
        if path.exists():
            set_aside(path, f"its settings file {meta_path.name} is damaged, so these lines cannot be matched "
                            "to the current settings")
        return []
    if not path.exists() or recorded != stamp:
        path.unlink(missing_ok=True)
        return []
    lines, good_bytes = [], 0
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                line = json.loads(raw)
            except ValueError:  # JSONDecodeError, or bytes that are not UTF-8 (a disk that filled up)
                break  # a line cut by a kill: drop it and what follows
            if (not isinstance(line, dict) or not raw.endswith(b"\n") or len(lines) >= len(expected_idx)
                    or line.get("idx") != expected_idx[len(lines)]):
                break
            lines.append(line)
            good_bytes += len(raw)
    with open(path, "r+b") as handle:
        handle.truncate(good_bytes)
    return lines


def _log_to_stderr(message: str) -> None:
    # stderr is the rule's log (kernels.io.log_to); stdout would reach the console only
    print(message, file=sys.stderr, flush=True)


def run_attack(attack: Attack, examples: pd.DataFrame, *, attack_seed: int, model_seed: int,
               progress_path: str | Path, stamp: str, log=_log_to_stderr) -> list[dict]:
    """Attack every row of ``examples`` (DESIGN.md columns), appending one line per example to
    ``progress_path``; lines already there from an interrupted run with the same ``stamp`` are kept.
    ``attack_seed`` seeds the random choices; ``model_seed`` (the attacked model's fine-tuning seed) is
    written as each line's ``seed``."""
    path = Path(progress_path)
    meta = path.with_name(path.name + ".meta.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    expected = [int(i) for i in examples["idx"]]
    lines = read_progress(path, meta, stamp, expected)
    if lines:
        log(f"resuming {attack.name} after {len(lines)} of {len(examples)} examples")
    write_json(meta, {"fingerprint": stamp})  # atomic: a kill or a full disk never leaves half of it
    with open(path, "a", encoding="utf-8") as handle:
        for position in range(len(lines), len(examples)):
            row = examples.iloc[position]
            text_b = None if "text_b" not in row or pd.isna(row["text_b"]) else str(row["text_b"])
            start = time.perf_counter()
            outcome = attack.attack(str(row["text_a"]), text_b, int(row["label"]),
                                    example_rng(attack_seed, row["idx"]))
            line = outcome_line(row, outcome, model_seed, attack_seed, time.perf_counter() - start)
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            lines.append(line)
    return lines


# ----------------------------------------------------------------------------------------- summary

def _rates(status: np.ndarray, pct: np.ndarray, queries: np.ndarray) -> dict[str, np.ndarray]:
    """TextAttack's summary rates for each row of index-resampled arrays ``[samples, n]``."""
    succ, fail = (status == SUCCESSFUL), (status == FAILED)
    attacked = succ | fail
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "original_accuracy": attacked.mean(axis=1),
            "accuracy_under_attack": fail.mean(axis=1),
            "attack_success_rate": succ.sum(axis=1) / attacked.sum(axis=1),
            "avg_perturbed_word_pct": (pct * succ).sum(axis=1) / succ.sum(axis=1),
            "avg_queries": (queries * attacked).sum(axis=1) / attacked.sum(axis=1),
        }


def budget_grid(query_budget: int) -> list[int]:
    grid = [b * 10 ** e for e in range(8) for b in (1, 2, 5) if b * 10 ** e < query_budget]
    return grid + [int(query_budget)]


def accuracy_vs_budget(lines: list[dict], query_budget: int) -> list[dict]:
    """Accuracy under attack had the budget been b: an attacked example falls once its first successful
    candidate is within b queries. Exact for these searches: a smaller budget only truncates the same
    sequence of candidate lists, so every query before the first success is the same."""
    first = np.array([np.inf if ln["first_success_query"] is None else ln["first_success_query"] for ln in lines])
    attacked = np.array([ln["status"] != SKIPPED for ln in lines])
    return [{"budget": b, "accuracy_under_attack": float(np.mean(attacked & (first > b))) if lines else None}
            for b in budget_grid(query_budget)]


def summarize(lines: list[dict], *, query_budget: int, seconds: float, bootstrap_samples: int,
              bootstrap_seed: int) -> dict:
    status = np.array([ln["status"] for ln in lines], dtype=object)
    pct = np.array([100.0 * ln["words_changed"] / max(ln["num_words"], 1) for ln in lines])
    queries = np.array([ln["queries"] for ln in lines], dtype=np.float64)
    point = {k: float(v[0]) for k, v in _rates(status[None, :], pct[None, :], queries[None, :]).items()}
    summary: dict = {
        "total": len(lines),
        "successful": int((status == SUCCESSFUL).sum()), "failed": int((status == FAILED).sum()),
        "skipped": int((status == SKIPPED).sum()),
    }
    rng = np.random.default_rng(int(bootstrap_seed))
    resampled = None
    if bootstrap_samples > 0 and lines:
        rows = rng.integers(0, len(lines), size=(int(bootstrap_samples), len(lines)))
        resampled = _rates(status[rows], pct[rows], queries[rows])
    for name, value in point.items():
        summary[name] = None if np.isnan(value) else value
        low, high = (nan_percentile_interval(resampled[name]) if resampled is not None else (None, None))
        summary[f"{name}_ci_low"], summary[f"{name}_ci_high"] = low, high
    total_queries = int(queries.sum())
    summary.update({
        "query_budget": int(query_budget), "total_queries": total_queries,
        "model_calls": int(total_queries - sum(ln["cache_hits"] for ln in lines)),
        "seconds": round(float(seconds), 3),
        "queries_per_second": (total_queries / seconds) if seconds > 0 else None,
        "accuracy_under_attack_vs_budget": accuracy_vs_budget(lines, query_budget),
        "bootstrap_samples": int(bootstrap_samples),
    })
    return summary
