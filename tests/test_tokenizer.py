"""Byte-level BPE tokenizer: training, determinism, the </s> templates, padding, save/load."""

from __future__ import annotations

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")  # tokenizers' thread pool: CPU is shared

from pathlib import Path

import pytest

from kernels.data import read_bundled_glue
from kernels.tokenization import load_tokenizer, save_tokenizer, train_tokenizer

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "data"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rte = read_bundled_glue(BUNDLED, "rte", "train").iloc[:1000]
    sst2 = read_bundled_glue(BUNDLED, "sst2", "train").iloc[:2000]
    return [t for pair in zip(rte["text_a"], rte["text_b"]) for t in pair] + sst2["text_a"].tolist()


@pytest.fixture(scope="module")
def tokenizer(texts):
    return train_tokenizer(texts, vocab_size=1000, min_frequency=2)


def test_vocab_and_special_tokens(tokenizer):
    assert len(tokenizer) == 1000
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<pad>", "<unk>", "<s>", "</s>"]
    assert tokenizer.pad_token_id == 0 and tokenizer.eos_token == "</s>" and tokenizer.padding_side == "right"


def test_same_input_same_tokenizer(texts, tokenizer, tmp_path):
    again = train_tokenizer(texts, vocab_size=1000, min_frequency=2)
    save_tokenizer(tokenizer, tmp_path / "a")
    save_tokenizer(again, tmp_path / "b")
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
    different = train_tokenizer(texts[::-1][:1500], vocab_size=1000, min_frequency=2)
    assert different.get_vocab() != tokenizer.get_vocab()


def test_any_text_round_trips_without_unknowns(tokenizer):
    text = "Zürich naïve — 😀 \ufeffΩ 漢字 trailing space "
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_single_and_pair_templates_end_with_eos(tokenizer):
    eos = tokenizer.eos_token_id
    single = tokenizer("a fine film ")["input_ids"]
    assert single[-1] == eos and single.count(eos) == 1
    first = tokenizer("A man sleeps.", add_special_tokens=False)["input_ids"]
    second = tokenizer("Nobody sleeps.", add_special_tokens=False)["input_ids"]
    pair = tokenizer("A man sleeps.", "Nobody sleeps.")["input_ids"]
    assert pair == first + [eos] + second + [eos]
    truncated = tokenizer("A man sleeps. " * 50, "Nobody sleeps. " * 50, truncation=True, max_length=16)["input_ids"]
    assert len(truncated) == 16 and truncated[-1] == eos


def test_right_padding_last_real_token_is_eos(tokenizer):
    batch = tokenizer(["short", "a considerably longer sentence than the other one"], padding=True)
    for ids, mask in zip(batch["input_ids"], batch["attention_mask"]):
        last = sum(mask) - 1
        assert mask[: last + 1] == [1] * (last + 1)  # padding only after the text
        assert ids[last] == tokenizer.eos_token_id
        assert all(i == 0 for i in ids[last + 1 :])


def test_save_load_round_trip(tokenizer, tmp_path):
    written = save_tokenizer(tokenizer, tmp_path / "tok")
    names = {p.name for p in written}
    assert {"tokenizer.json", "tokenizer_config.json"} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging directory removed
    loaded = load_tokenizer(tmp_path / "tok")
    sample = ("The cat sat.", "A cat is sitting.")
    assert loaded(*sample)["input_ids"] == tokenizer(*sample)["input_ids"]
    assert loaded.pad_token_id == 0 and loaded.padding_side == "right"
    # Overwriting an existing save replaces the files in place.
    save_tokenizer(tokenizer, tmp_path / "tok")
    assert json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())["pad_token"] == "<pad>"


def test_load_tokenizer_without_pad_uses_eos_and_right_padding(tokenizer, tmp_path):
    save_tokenizer(tokenizer, tmp_path / "nopad")
    config_path = tmp_path / "nopad" / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("pad_token")
    config["padding_side"] = "left"
    config_path.write_text(json.dumps(config))
    loaded = load_tokenizer(tmp_path / "nopad")
    assert loaded.pad_token == "</s>" and loaded.padding_side == "right"


def test_bad_training_arguments(texts):
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 260"):
        train_tokenizer(texts, vocab_size=100, min_frequency=2)
    with pytest.raises(ValueError, match="min_frequency"):
        train_tokenizer(texts, vocab_size=1000, min_frequency=0)
    with pytest.raises(ValueError, match="no texts"):
        train_tokenizer([], vocab_size=1000, min_frequency=2)
