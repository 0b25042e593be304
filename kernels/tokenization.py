"""Byte-level BPE tokenizer for the from-scratch models, loading of pretrained tokenizers, and the one
input template that every classifier input follows, whatever the tokenizer.

Input template (the same for the demo tokenizer and pretrained Llama-style ones)::

    single sentence:  [BOS] A </s>
    pair:             [BOS] A </s> B </s>

``[BOS]`` is whatever the tokenizer itself puts before a text (``<s>`` for Llama-style tokenizers,
nothing for the demo tokenizer); ``</s>`` is the tokenizer's end-of-sequence token. Classifiers pool
the hidden state of the last non-padding token, so that token is always the final ``</s>``: a causal
model has read the whole input there. Pretrained tokenizers bring their own post-processors (Llama's
gives ``<s> A`` and ``<s> A <s> B``, with no end marker), so the template is applied here instead of
trusting theirs. ``</s>`` separates the pair because it is the one token every causal LM has seen at a
document boundary; a second ``<s>`` would be a token the model saw only at position 0. Truncation
(``longest_first``, done by the tokenizers library) never removes a template token. Padding goes to the
right, where recurrent models read it only after the text.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Encoding, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from kernels.io import honour_umask

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)  # in id order: <pad> is id 0


def _check_training_args(vocab_size: int, min_frequency: int) -> None:
    alphabet = len(pre_tokenizers.ByteLevel.alphabet())
    if not isinstance(vocab_size, int) or vocab_size < alphabet + len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size must be an integer >= {alphabet + len(SPECIAL_TOKENS)} "
            f"(256 byte symbols + {len(SPECIAL_TOKENS)} special tokens), got {vocab_size!r}"
        )
    if not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be a positive integer, got {min_frequency!r}")


def _byte_level_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    # Byte-level: every UTF-8 string maps to the 256 byte symbols, so nothing is ever unknown.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_checked_texts(texts), trainer=trainer)
    eos_id = tokenizer.token_to_id(EOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}",
        pair=f"$A {EOS} $B:1 {EOS}:1",
        special_tokens=[(EOS, eos_id)],
    )
    return tokenizer


def _checked_texts(texts: Iterable[str]) -> Iterable[str]:
    count = 0
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"tokenizer training texts must be str, got {type(text).__name__} at position {count}")
        count += 1
        yield text
    if count == 0:
        raise ValueError("no texts to train the tokenizer on")


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` (same texts in the same order: same tokenizer)."""
    _check_training_args(vocab_size, min_frequency)
    backend = _byte_level_bpe(texts, vocab_size, min_frequency)
    if backend.token_to_id(PAD) != 0:
        raise RuntimeError(f"{PAD} must be token id 0, got {backend.token_to_id(PAD)}")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        padding_side="right",
    )


def ensure_padding(tokenizer: PreTrainedTokenizerBase, source: str = "tokenizer") -> PreTrainedTokenizerBase:
    """Give ``tokenizer`` a pad token (its eos token if it has none) and right padding."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"{source}: tokenizer has neither a pad nor an eos token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    # Recurrent models must see the padding after the text, not before it.
    tokenizer.padding_side = "right"
    return tokenizer


def _text_prefix_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The ids the tokenizer puts before a single text on its own (e.g. ``[<s>]``, or ``[]``)."""
    probe = "a"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return list(full[:start])
    raise ValueError(f"tokenizer {tokenizer.name_or_path!r}: its special-token template does not keep the text "
                     f"intact ({full} vs {plain})")


def classification_template(tokenizer: PreTrainedTokenizerBase) -> processors.TemplateProcessing:
    """The post-processor of the module's input template for ``tokenizer`` (see the module docstring)."""
    eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
    if eos is None or eos_id is None:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has no eos token: the classifier input template "
                         "ends every input with it")
    prefix_ids = _text_prefix_ids(tokenizer)
    prefix = [tokenizer.convert_ids_to_tokens(i) for i in prefix_ids]
    head = " ".join(prefix + ["$A:0"])
    return processors.TemplateProcessing(
        single=f"{head} {eos}:0",
        pair=f"{head} {eos}:0 $B:1 {eos}:1",
        special_tokens=sorted(set(zip(prefix + [eos], prefix_ids + [eos_id]))),
    )


def classification_encoder(tokenizer: PreTrainedTokenizerBase, max_length: int) -> Tokenizer:
    """A copy of ``tokenizer``'s backend that encodes with the input template, truncated to ``max_length``.

    The tokenizer itself is left untouched (its saved files stay as published).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError(f"tokenizer {tokenizer.name_or_path!r} ({type(tokenizer).__name__}) has no tokenizers "
                        "backend (tokenizer.json); the workflow needs a fast tokenizer")
    encoder = Tokenizer.from_str(backend.to_str())
    encoder.post_processor = classification_template(tokenizer)
    encoder.no_padding()
    encoder.enable_truncation(max_length=int(max_length), strategy="longest_first")
    return encoder


def encode_for_classification(tokenizer: PreTrainedTokenizerBase, text_a: list[str], text_b: list[str] | None,
                              max_length: int) -> list[list[int]]:
    """Token ids of each input under the template: ``[BOS] A </s>`` or ``[BOS] A </s> B </s>``."""
    encoder = classification_encoder(tokenizer, max_length)
    if text_b is None:
        encodings: list[Encoding] = encoder.encode_batch(list(text_a))
    else:
        encodings = encoder.encode_batch(list(zip(text_a, text_b)))
    return [list(enc.ids) for enc in encodings]


def load_tokenizer(source: str | os.PathLike, revision: str | None = None) -> PreTrainedTokenizerBase:
    """A tokenizer from a directory or hub id (never remote code), padded on the right."""
    tokenizer = AutoTokenizer.from_pretrained(str(source), revision=revision, trust_remote_code=False)
    return ensure_padding(tokenizer, str(source))


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, directory: str | os.PathLike) -> list[Path]:
    """``save_pretrained`` into ``directory`` without ever leaving a half-written file there.

    Files are written into a temporary sibling directory, then each is renamed into place
    (rename is atomic within one file system). Returns the paths written.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        tokenizer.save_pretrained(str(staging))
        written = []
        # tokenizer_config.json last: it is what AutoTokenizer looks for first.
        names = sorted(os.listdir(staging), key=lambda name: (name == "tokenizer_config.json", name))
        for name in names:
            honour_umask(staging / name)
            os.replace(staging / name, target / name)
            written.append(target / name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
