"""Snakemake script: train the byte-level BPE tokenizer of the from-scratch models.

Trains on text_a and text_b of every given GLUE training set and saves it into the directory
holding the two outputs (tokenizer.json, tokenizer_config.json). By hand:
    python workflow_scripts/train_tokenizer.py results/data/glue/*/train.parquet --out-dir results/tokenizer
"""


import argparse
import sys
from pathlib import Path

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.data import iter_texts
from kernels.io import log_to
from kernels.tokenization import save_tokenizer, train_tokenizer


def main(
    train_paths: list[str],
    tokenizer_json: str,
    tokenizer_config: str,
    vocab_size: int,
    min_frequency: int,
    log: str | None = None,
) -> None:
    with log_to(log, outputs=[tokenizer_json, tokenizer_config]):
        _train_and_save(list(train_paths), tokenizer_json, tokenizer_config, vocab_size, min_frequency)


def _train_and_save(train_paths, tokenizer_json, tokenizer_config, vocab_size, min_frequency) -> None:
    directory = Path(tokenizer_json).parent
    expected = {"tokenizer_json": (tokenizer_json, "tokenizer.json"), "tokenizer_config": (tokenizer_config, "tokenizer_config.json")}
    for key, (path, name) in expected.items():
        if Path(path).name != name or Path(path).parent != directory:
            raise ValueError(f"output {key} must be {directory / name} (save_pretrained names it so), got {path}")
    if not train_paths:
        raise ValueError("train_tokenizer needs at least one training parquet file")
    tokenizer = train_tokenizer(iter_texts(train_paths), vocab_size=vocab_size, min_frequency=min_frequency)
    written = {path.name for path in save_tokenizer(tokenizer, directory)}
    missing = {"tokenizer.json", "tokenizer_config.json"} - written
    if missing:
        raise RuntimeError(f"save_pretrained did not write {', '.join(sorted(missing))} into {directory}")
    print(f"trained on {len(train_paths)} file(s): vocabulary {len(tokenizer)}, saved to {directory}", file=sys.stderr)


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train_paths", nargs="+", help="normalised train parquet files")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--min-frequency", type=int, default=2)
    return parser.parse_args(argv)


def _training_inputs(inputs) -> list[str]:
    """The rule also lists code files as inputs; the training sets are the ones named `train`."""
    train = inputs.get("train")
    if train is None:
        return list(inputs)
    return [train] if isinstance(train, str) else list(train)


if "snakemake" in globals():
    smk = globals()["snakemake"]
    main(
        train_paths=_training_inputs(smk.input),
        tokenizer_json=smk.output.tokenizer_json,
        tokenizer_config=smk.output.tokenizer_config,
        vocab_size=smk.params.vocab_size,
        min_frequency=smk.params.min_frequency,
        log=smk.log[0] if len(smk.log) else None,
    )
elif __name__ == "__main__":
    args = _parse_args()
    out = Path(args.out_dir)
    main(
        train_paths=args.train_paths,
        tokenizer_json=str(out / "tokenizer.json"),
        tokenizer_config=str(out / "tokenizer_config.json"),
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
    )
