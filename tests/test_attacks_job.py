"""The attack stage's jobs (kernels.attacks.job, what rules/attack.smk runs) on a saved tiny model: the
contract's files and fields, resuming from an interrupted run, and the trigger transfer table."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from kernels.attacks.job import attack_job, transfer_job, trigger_job
from kernels.attacks.recipes import AttackSettings
from kernels.attacks.resources import DEFAULT_DIR, load_resources
from kernels.attacks.runner import LINE_FIELDS
from kernels.attacks.wordnet import read_synonym_table
from kernels.models import build_classifier
from kernels.tokenization import save_tokenizer, train_tokenizer
from test_training_support import sentiment_frame

torch.set_num_threads(1)
RESOURCES, TABLE = load_resources(), read_synonym_table(DEFAULT_DIR / "wordnet_synonyms.tsv")
SUMMARY_FIELDS = ("successful", "failed", "skipped", "original_accuracy", "accuracy_under_attack",
                  "attack_success_rate", "avg_perturbed_word_pct", "avg_queries", "query_budget", "seconds",
                  "queries_per_second", "accuracy_under_attack_vs_budget")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("attack_job")
    frame = sentiment_frame(40, seed=5)
    tokenizer = train_tokenizer(list(sentiment_frame()["text_a"]), vocab_size=520, min_frequency=1)  # whole words
    model_dirs = {}
    for name, seed in (("a", 1), ("b", 2)):
        model = build_classifier("gla", {"hidden_size": 32, "num_hidden_layers": 1, "num_heads": 2},
                                 vocab_size=len(tokenizer), num_labels=2, pad_token_id=tokenizer.pad_token_id,
                                 seed=seed)
        with torch.no_grad():  # a sharper head, so that predictions differ between inputs
            model.score.weight.mul_(50)
        model.save_pretrained(root / name)
        save_tokenizer(tokenizer, root / name)
        model_dirs[name] = root / name
    split = root / "validation.parquet"
    frame.to_parquet(split)
    return root, model_dirs, split


def run_job(setup, recipe="deepwordbug", examples=8, out="out", budget=50):
    root, dirs, split = setup
    return attack_job(model_dir=dirs["a"], family="gla", split_path=split, recipe=recipe,
                      settings=AttackSettings(query_budget=budget), examples=examples, example_seed=3, seed=4,
                      jsonl_path=root / out / f"{recipe}.jsonl", summary_path=root / out / f"{recipe}.json",
                      max_length=64, bootstrap_samples=20, model_seed=7)


def test_attack_job_writes_the_contracts_files(setup):
    root = setup[0]
    summary = run_job(setup)
    written = json.loads((root / "out/deepwordbug.json").read_text())
    assert written == summary and all(field in written for field in SUMMARY_FIELDS)
    lines = [json.loads(x) for x in (root / "out/deepwordbug.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and all(set(LINE_FIELDS) <= set(line) for line in lines)
    assert written["successful"] + written["failed"] + written["skipped"] == 8
    assert not (root / "out/deepwordbug.jsonl.part").exists()
    assert max(line["queries"] for line in lines) <= 50 == written["query_budget"]
    # `seed` is the attacked model's fine-tuning seed (DESIGN.md), the attack's own seed is `attack_seed`
    assert {(ln["seed"], ln["attack_seed"]) for ln in lines} == {(7, 4)}
    assert (written["seed"], written["attack_seed"]) == (7, 4)


@pytest.fixture(scope="module")
def trained(setup, tmp_path_factory):
    """A tiny Transformer++ fine-tuned on the test sentiment task, saved as the fine-tune stage saves one."""
    from kernels.tokenization import load_tokenizer
    from kernels.training import FinetuneHyperparams, train_classifier
    from kernels.training.batching import encode_examples

    root, dirs, _ = setup
    tokenizer = load_tokenizer(dirs["a"])
    model = build_classifier("transformer_pp", {"hidden_size": 32, "num_hidden_layers": 1, "num_heads": 2},
                             vocab_size=len(tokenizer), num_labels=2, pad_token_id=tokenizer.pad_token_id, seed=3)
    train_classifier(model, encode_examples(tokenizer, sentiment_frame(160, seed=1), 64),
                     FinetuneHyperparams(epochs=2, batch_size=16, lr=3e-3, max_length=64, seed=0),
                     pad_token_id=tokenizer.pad_token_id, checkpoint_dir=tmp_path_factory.mktemp("ckpt"), progress=False)
    model.save_pretrained(root / "trained")
    save_tokenizer(tokenizer, root / "trained")
    return root / "trained"


@pytest.mark.parametrize("recipe", ["hotflip", "pwws"])
def test_word_recipes_write_only_wordnet_synonyms(setup, trained, recipe):
    """On the job's own output files: every substitution of a successful HotFlip / PWWS attack is a WordNet
    synonym (bundled table) of the word it replaces."""
    from kernels.attacks.resources import DEFAULT_DIR
    from kernels.attacks.wordnet import non_synonym_substitutions, read_synonym_table, substitutions

    root, _, split = setup
    out = root / f"words_{recipe}"
    summary = attack_job(model_dir=trained, family="transformer_pp", split_path=split, recipe=recipe,
                         settings=AttackSettings(query_budget=300, hotflip_candidates=3), examples=40, example_seed=3,
                         seed=4, jsonl_path=out / f"{recipe}.jsonl", summary_path=out / f"{recipe}.json",
                         max_length=64, bootstrap_samples=20, model_seed=7)
    lines = [json.loads(x) for x in (out / f"{recipe}.jsonl").read_text().splitlines()]
    swaps = [s for ln in lines if ln["status"] == "successful"
             for s in substitutions(ln["text_a"], None, ln["perturbed_text_a"], None)]
    assert non_synonym_substitutions(lines, read_synonym_table(DEFAULT_DIR / "wordnet_synonyms.tsv")) == []
    assert summary["changes"] == "words" and summary["wordnet"].startswith("bundled WordNet 3.0 table")
    if recipe == "pwws":
        assert swaps  # (same-sentiment synonyms of these test words rarely flip a one-token HotFlip)
    else:
        counts = summary["synonym_candidates"]
        assert counts["synonyms"] > counts["one_token_in_context"] >= counts["within_cos_sim"] > 0
    if recipe == "hotflip":
        counts = summary["synonym_candidates"]
        assert counts["synonyms"] >= counts["one_token_in_context"] >= counts["within_cos_sim"]


def test_interrupted_job_resumes_and_other_settings_start_over(setup, capsys):
    from kernels.attacks.job import attack_stamp, read_split
    from kernels.attacks.runner import select_examples

    root, dirs, split = setup
    first = run_job(setup, out="resume")
    final = root / "resume/deepwordbug.jsonl"
    lines = final.read_text().splitlines(keepends=True)
    final.unlink()
    part, meta = root / "resume/deepwordbug.jsonl.part", root / "resume/deepwordbug.jsonl.part.meta.json"
    frame = select_examples(read_split(split), 8, 3)
    stamp = attack_stamp("deepwordbug", AttackSettings(query_budget=50), 4, frame, 64, "float32", dirs["a"])
    # killed after three examples and in the middle of the fourth line
    part.write_text("".join(lines[:3]) + lines[3][:20])
    meta.write_text(json.dumps({"fingerprint": stamp}))
    capsys.readouterr()
    again = run_job(setup, out="resume")
    assert "resuming deepwordbug after 3 of 8 examples" in capsys.readouterr().err  # the rule log
    strip = lambda s: {k: v for k, v in s.items() if k not in ("seconds", "queries_per_second")}  # noqa: E731
    assert strip(again) == strip(first)
    assert [strip(json.loads(x)) for x in final.read_text().splitlines()] == [strip(json.loads(x)) for x in lines]
    # a progress file of other settings (another seed's stamp) is not resumed
    part.write_text("".join(lines[:3]))
    meta.write_text(json.dumps({"fingerprint": "another"}))
    run_job(setup, out="resume")
    assert "resuming" not in capsys.readouterr().err


def test_triggers_and_transfer_table(setup):
    root, dirs, split = setup
    for name in dirs:
        result = trigger_job(model_dir=dirs[name], family="gla", task="sst2", split_path=split, examples=8,
                             search_examples=8, example_seed=3, seed=4, out_path=root / f"trig_{name}.json",
                             max_length=64, length=2, steps=1, candidates=4, beam=1)
        assert [t["target"] for t in result["triggers"]] == [0, 1]
        assert all(len(t["words"]) == 2 and t["loss"] <= t["loss_history"][0] for t in result["triggers"])
        # whole words only (a stopword or a word of the bundled WordNet table), never a word beginning
        for word in (w for t in result["triggers"] for w in t["words"]):
            assert word in RESOURCES.stopwords or TABLE.is_word(word), word
        assert (result["seed"], result["attack_seed"]) == (0, 4) and "bundled WordNet" in result["words_from"]
    table = transfer_job(triggers={n: root / f"trig_{n}.json" for n in dirs},
                         victims={n: (dirs[n], "gla") for n in dirs}, split_path=split, examples=8, example_seed=3,
                         out_path=root / "transfer.csv", max_length=64)
    assert len(table) == 2 * 2 * 2  # sources x targets x victims
    assert set(pd.read_csv(root / "transfer.csv")["victim_model"]) == {"a", "b"}
    assert ((table["target_rate_triggered"] >= 0) & (table["target_rate_triggered"] <= 1)).all()
    rates = table.dropna(subset=["attack_success_rate"])
    assert (rates["n_success"] == (rates["attack_success_rate"] * rates["n_correct"]).round()).all()

