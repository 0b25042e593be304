"""A Llama-style tokenizer built offline: what the published checkpoints ship, at a small vocabulary.

Like the Llama tokenizer of fla-hub's and ridger's checkpoints: SentencePiece-style BPE over ``▁``-marked
words with byte fallback (every byte ``<0x00>``..``<0xFF>`` is a vocabulary entry, so nothing is ever
unknown), ``<unk>`` = 0, ``<s>`` = 1, ``</s>`` = 2, **no pad token**, a post-processor that gives
``<s> A`` and ``<s> A <s> B`` (no end-of-sequence token), and a ``tokenizer_config.json`` naming
``LlamaTokenizer``. Trained with the ``tokenizers`` library on the given texts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
BYTE_TOKENS = [f"<0x{value:02X}>" for value in range(256)]


def _train_backend(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    backend = Tokenizer(models.BPE(unk_token=UNK, byte_fallback=True, fuse_unk=True))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    # The byte tokens are given as special tokens only to reserve ids 3..258 for them, as Llama has them.
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=[UNK, BOS, EOS] + BYTE_TOKENS)
    backend.train_from_iterator(texts, trainer=trainer)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1", special_tokens=[(BOS, 1)])
    layout = json.loads(backend.to_str())
    # In Llama's tokenizer.json the byte tokens are plain vocabulary entries, not added special tokens.
    layout["added_tokens"] = [t for t in layout["added_tokens"] if t["content"] in (UNK, BOS, EOS)]
    return Tokenizer.from_str(json.dumps(layout))


def write_llama_style_tokenizer(directory: str | Path, texts: Iterable[str], vocab_size: int = 1024) -> Path:
    """Train and save ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    backend = _train_backend(texts, vocab_size)
    for token, expected in ((UNK, 0), (BOS, 1), (EOS, 2)):
        if backend.token_to_id(token) != expected:
            raise RuntimeError(f"{token} has id {backend.token_to_id(token)}, Llama layout needs {expected}")
    backend.save(str(directory / "tokenizer.json"))
    config = {"tokenizer_class": "LlamaTokenizer", "bos_token": BOS, "eos_token": EOS, "unk_token": UNK,
              "pad_token": None, "add_bos_token": True, "add_eos_token": False, "legacy": False,
              "model_max_length": 2048, "clean_up_tokenization_spaces": False}
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": UNK}
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    return directory
