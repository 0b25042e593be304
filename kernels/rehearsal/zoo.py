"""Inputs of the zoo rehearsal: tiny checkpoints in the published layouts of the zoo's models.

``python -m kernels.rehearsal.zoo [DIR]`` (default ``rehearsal/``, after ``python -m kernels.rehearsal DIR``,
whose Llama-style tokenizer every checkpoint here copies) writes under ``DIR/zoo/``:

- one directory per record of :data:`kernels.rehearsal.published.ZOO` (fla-hub's 1.3B-100B models): written
  by fla's own ``*ForCausalLM`` class (the library that wrote the published files), ``config.json`` replaced by
  the recorded published fields with only the sizes swapped (:attr:`Published.tiny`) and the vocabulary;
- ``mamba2`` and ``rwkv``: transformers' own ``Mamba2ForCausalLM`` / ``RwkvForCausalLM`` written by
  ``save_pretrained`` (transformers' layout: a checkpoint of an architecture this package has no code for).

Weights are bf16 safetensors, as published. fla's classes construct and save on CPU (their forwards need
triton: the rehearsal checks those by loading every tensor, and runs the ones triton's interpreter can).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from kernels.rehearsal.published import ZOO, Published

# transformers-native stand-ins written by transformers itself (the sizes of the demo overlay's, smaller).
TRANSFORMERS_NATIVE = {
    "mamba2": {"model_type": "mamba2", "hidden_size": 64, "num_hidden_layers": 2, "expand": 2, "num_heads": 4,
               "head_dim": 32, "state_size": 16, "n_groups": 1, "chunk_size": 32},
    "rwkv": {"model_type": "rwkv", "hidden_size": 64, "num_hidden_layers": 2, "attention_hidden_size": 64,
             "intermediate_size": 128, "context_length": 1024},
}


def directory_name(record: Published) -> str:
    """``fla-hub/retnet-1.3B-100B`` -> ``retnet`` (the rehearsal config points at these)."""
    return record.hub_id.split("/")[-1].split("-")[0]


def tiny_config(record: Published, vocab_size: int) -> dict[str, Any]:
    return {**record.config, **record.tiny, "vocab_size": int(vocab_size)}


def _copy_tokenizer(tokenizer_dir: Path, target: Path) -> None:
    for item in tokenizer_dir.iterdir():
        if item.is_file():
            shutil.copyfile(item, target / item.name)


def _save(model, directory: Path, config: dict[str, Any] | None, tokenizer_dir: Path) -> list[str]:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    model.to(torch.bfloat16).save_pretrained(str(directory), safe_serialization=True)
    if config is not None:  # the published fields, whatever the writing class adds or renames
        (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (directory / "generation_config.json").unlink(missing_ok=True)
    _copy_tokenizer(tokenizer_dir, directory)
    return sorted(p.name for p in directory.iterdir())


def write_fla_checkpoint(record: Published, directory: Path, tokenizer_dir: Path, vocab_size: int, seed: int = 0):
    """A tiny checkpoint of a zoo record, written by fla's own causal-LM class."""
    from kernels.models.generic import backbone_fields, resolve

    config = tiny_config(record, vocab_size)
    classes = resolve("fla", config["model_type"])
    torch.manual_seed(seed)
    model = classes.causal_lm(classes.config(**backbone_fields(config)))
    return {"writer": f"fla {classes.causal_lm.__name__}", "files": _save(model, directory, config, tokenizer_dir)}


def write_transformers_checkpoint(arch: dict[str, Any], directory: Path, tokenizer_dir: Path, vocab_size: int,
                                  seed: int = 0):
    """A tiny checkpoint of transformers' own causal-LM class, written by its ``save_pretrained``."""
    from kernels.models.generic import resolve

    fields = dict(arch)
    classes = resolve("transformers", fields.pop("model_type"))
    torch.manual_seed(seed)
    model = classes.causal_lm(classes.config(vocab_size=int(vocab_size), **fields))
    return {"writer": f"transformers {classes.causal_lm.__name__}", "files": _save(model, directory, None,
                                                                                    tokenizer_dir)}


def build_zoo_inputs(root: str | Path = "rehearsal", records=ZOO, native=TRANSFORMERS_NATIVE) -> dict[str, dict]:
    """Every zoo stand-in under ``root/zoo`` (the paper rehearsal's tokenizer must be at ``root/tokenizer``)."""
    from kernels.tokenization import load_tokenizer

    root = Path(root)
    tokenizer_dir = root / "tokenizer"
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{tokenizer_dir}: run `python -m kernels.rehearsal {root}` first (its tokenizer)")
    vocab_size = len(load_tokenizer(tokenizer_dir))
    written = {}
    for record in records:
        name = directory_name(record)
        written[name] = write_fla_checkpoint(record, root / "zoo" / name, tokenizer_dir, vocab_size)
    for name, arch in native.items():
        written[name] = write_transformers_checkpoint(arch, root / "zoo" / name, tokenizer_dir, vocab_size)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", default="rehearsal")
    args = parser.parse_args()
    for name, info in build_zoo_inputs(args.directory).items():
        print(f"{name}: {info['writer']}")


if __name__ == "__main__":
    main()
