"""The attack stage's jobs: one recipe against one fine-tuned model (rule ``attack``), the universal
trigger search per model (rule ``attack_trigger``) and the trigger transfer matrix (``trigger_transfer``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import torch

from kernels.attacks.recipes import RECIPES, AttackSettings, build_attack
from kernels.attacks.resources import WordNetSettings, load_resources
from kernels.attacks.runner import fingerprint, run_attack, select_examples, summarize
from kernels.attacks.victim import ClassifierVictim
from kernels.attacks.whitebox import apply_trigger, find_trigger
from kernels.data.tasks import get_task
from kernels.io import write_csv, write_json


def load_victim(model_dir: str | Path, family: str, *, max_length: int, batch_size: int, device: str,
                dtype: str) -> ClassifierVictim:
    from kernels.evaluation.job import load_finetuned

    model, tokenizer = load_finetuned(family, model_dir)
    return ClassifierVictim(model, tokenizer, max_length=max_length, batch_size=batch_size, device=device,
                            dtype=dtype)


def read_split(path: str | Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    missing = [c for c in ("idx", "text_a", "label") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    return frame


def _weights_stamp(model_dir: Path) -> list:
    stat = (model_dir / "model.safetensors").stat()
    return [stat.st_size, stat.st_mtime_ns]


def attack_stamp(recipe: str, settings: AttackSettings, seed: int, frame: pd.DataFrame, max_length: int, dtype: str,
                 model_dir: str | Path, wordnet: WordNetSettings | None = None) -> str:
    """What a progress file must have been written with to be resumed: the recipe, its settings, the attack
    seed, the examples, the encoding, the weights file (size and modification time) and, for the recipes that
    read WordNet, which WordNet."""
    extra = {"wordnet": vars(wordnet)} if wordnet is not None and RECIPES[recipe].changes == "words" else {}
    return fingerprint(recipe=recipe, settings=settings, seed=seed, idx=list(map(int, frame["idx"])),
                       max_length=max_length, dtype=dtype, weights=_weights_stamp(Path(model_dir)), **extra)


def attack_job(*, model_dir: str | Path, family: str, split_path: str | Path, recipe: str, settings: AttackSettings,
               examples: int | None, example_seed: int, seed: int, jsonl_path: str | Path,
               summary_path: str | Path, max_length: int, batch_size: int = 64, device: str = "cpu",
               dtype: str = "float32", threads: int | None = None, bootstrap_samples: int = 1000,
               resources_dir: str | Path | None = None, model_seed: int = 0,
               wordnet: WordNetSettings | None = None) -> dict:
    """Attack ``examples`` seeded rows of ``split_path`` with the random choices seeded by ``seed`` (the
    attack's seed, written as ``attack_seed``; ``model_seed`` is the attacked model's fine-tuning seed, written
    as ``seed``); progress goes to ``<jsonl>.part`` (Snakemake removes the declared outputs of a failed job, so
    that is where a re-run resumes from) and becomes the jsonl at the end."""
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(int(seed))
    victim = load_victim(model_dir, family, max_length=max_length, batch_size=batch_size, device=device, dtype=dtype)
    resources = load_resources(resources_dir, wordnet)
    attack = build_attack(recipe, victim, settings, resources)
    frame = select_examples(read_split(split_path), examples, example_seed)
    stamp = attack_stamp(recipe, settings, seed, frame, max_length, dtype, model_dir, resources.wordnet)
    progress = Path(str(jsonl_path) + ".part")
    lines = run_attack(attack, frame, attack_seed=seed, model_seed=model_seed, progress_path=progress, stamp=stamp)
    summary = summarize(lines, query_budget=settings.query_budget, seconds=sum(ln["seconds"] for ln in lines),
                        bootstrap_samples=bootstrap_samples, bootstrap_seed=seed)
    summary.update({"recipe": recipe, "seed": int(model_seed), "attack_seed": int(seed), "examples": len(lines),
                    "settings": vars(settings).copy(), "perturbed_fields": "both (text_a and text_b), as TextAttack",
                    "changes": RECIPES[recipe].changes})
    summary.update(transformation_record(attack.transformation))
    write_json(summary_path, summary)
    os.replace(progress, jsonl_path)
    Path(str(progress) + ".meta.json").unlink(missing_ok=True)
    return summary


def transformation_record(transformation) -> dict:
    """What the transformation can tell about its candidates: gradient passes (HotFlip), how many WordNet
    synonyms each filter kept (HotFlip), the synonym source and the words it did not cover (PWWS, HotFlip)."""
    record = {}
    if hasattr(transformation, "gradient_calls"):
        record["gradient_calls"] = transformation.gradient_calls
    if hasattr(transformation, "counts"):
        record["synonym_candidates"] = dict(transformation.counts)
    if hasattr(transformation, "synonyms"):
        record["wordnet"] = transformation.synonyms.description
    if hasattr(transformation, "uncovered"):
        record["words_not_in_wordnet_table"] = len(transformation.uncovered)
    return record


def trigger_job(*, model_dir: str | Path, family: str, task: str, split_path: str | Path, examples: int | None,
                search_examples: int, example_seed: int, seed: int, out_path: str | Path, max_length: int,
                length: int, steps: int, candidates: int, beam: int, batch_size: int = 64, device: str = "cpu",
                dtype: str = "float32", threads: int | None = None, model_seed: int = 0,
                resources_dir: str | Path | None = None, wordnet: WordNetSettings | None = None) -> dict:
    """One trigger per target class, searched on ``search_examples`` rows of the other classes that come
    after the attacked rows in the same seeded order (the triggers are then evaluated on the attacked rows).
    ``seed``: the attack's seed (``attack_seed`` in the file); ``model_seed``: the model's (``seed``). Trigger
    words are words: a stopword or a word of the WordNet source (``wordnet``; the bundled table: the words of
    the demo's data), never a word beginning that is a token of its own."""
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(int(seed))
    victim = load_victim(model_dir, family, max_length=max_length, batch_size=batch_size, device=device, dtype=dtype)
    pool = select_examples(read_split(split_path), search_examples, example_seed, skip=int(examples or 0))
    resources = load_resources(resources_dir, wordnet)
    words = resources.synonyms

    def is_word(word: str) -> bool:
        return word.lower() in resources.stopwords or words.is_word(word)

    start, triggers = time.perf_counter(), []
    for target in range(get_task(task).num_labels):
        rows = pool[pool["label"] != target]
        pairs = [(str(a), None if pd.isna(b) else str(b)) for a, b in zip(rows["text_a"], rows.get("text_b", [None] * len(rows)))]
        if not pairs:
            raise ValueError(f"{split_path}: no search example outside class {target}; raise attack.trigger.search_examples")
        found = find_trigger(victim, pairs, target, length=length, steps=steps, candidates=candidates, beam=beam,
                             is_word=is_word)
        triggers.append({**found, "search_examples": len(pairs)})
    result = {"task": task, "seed": int(model_seed), "attack_seed": int(seed), "triggers": triggers,
              "words_from": f"stopwords and {words.description}", "seconds": round(time.perf_counter() - start, 3)}
    write_json(out_path, result)
    return result


def transfer_job(*, triggers: dict[str, str | Path], victims: dict[str, tuple[str | Path, str]], split_path: str | Path,
                 examples: int | None, example_seed: int, out_path: str | Path, max_length: int,
                 batch_size: int = 64, device: str = "cpu", dtype: str = "float32", threads: int | None = None,
                 per_victim: dict[str, dict] | None = None) -> pd.DataFrame:
    """Every model's triggers against every model: one row per (source, target class, victim). ``per_victim``
    overrides ``max_length`` / ``dtype`` / ``device`` per victim (each model is run as it was fine-tuned)."""
    import json

    if threads:
        torch.set_num_threads(int(threads))
    frame = select_examples(read_split(split_path), examples, example_seed)
    pairs = [(str(a), None if pd.isna(b) else str(b)) for a, b in zip(frame["text_a"], frame.get("text_b", [None] * len(frame)))]
    labels = frame["label"].to_numpy()
    rows = []
    for victim_name, (model_dir, family) in victims.items():
        own = {"max_length": max_length, "device": device, "dtype": dtype, **(per_victim or {}).get(victim_name, {})}
        victim = load_victim(model_dir, family, batch_size=batch_size, **own)
        clean = victim.probabilities(pairs).argmax(axis=1)
        for source, path in triggers.items():
            for trig in json.loads(Path(path).read_text())["triggers"]:
                target, others = trig["target"], labels != trig["target"]
                triggered = victim.probabilities(apply_trigger(trig["words"], pairs)).argmax(axis=1)
                correct = others & (clean == labels)
                hits = correct & (triggered == target)
                rows.append({
                    "source_model": source, "victim_model": victim_name, "target": target, "trigger": trig["text"],
                    "n": int(others.sum()), "n_correct": int(correct.sum()), "n_success": int(hits.sum()),
                    "accuracy_clean": float((clean == labels)[others].mean()) if others.any() else None,
                    "accuracy_triggered": float((triggered == labels)[others].mean()) if others.any() else None,
                    "target_rate_clean": float((clean == target)[others].mean()) if others.any() else None,
                    "target_rate_triggered": float((triggered == target)[others].mean()) if others.any() else None,
                    "attack_success_rate": (float((triggered == target)[correct].mean()) if correct.any() else None),
                })
    table = pd.DataFrame(rows)
    write_csv(out_path, table)
    return table
