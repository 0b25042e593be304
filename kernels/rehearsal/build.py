"""Write every input of the paper-scale rehearsal (see the package docstring) into one directory."""

from __future__ import annotations

from pathlib import Path

from kernels.data.glue import read_bundled_glue
from kernels.rehearsal.checkpoints import write_checkpoint
from kernels.rehearsal.hub import copy_annotations, write_advglue_repo, write_glue_repo
from kernels.rehearsal.tokenizer import write_llama_style_tokenizer

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUNDLED = REPO / "resources" / "data"
# Directory names under the rehearsal root; tests/configs/paper_rehearsal.yaml points at them.
CHECKPOINTS = {"transformer_pp": "transformer", "gla": "gla", "mmfree": "mmfree"}
SHARDED = "mmfree"  # one checkpoint comes sharded, as multi-GB hub checkpoints often do


def tokenizer_texts(bundled_dir: Path) -> list[str]:
    """Texts to train the rehearsal tokenizer on: the bundled RTE and a slice of SST-2 training data."""
    rte = read_bundled_glue(bundled_dir, "rte", "train")
    sst2 = read_bundled_glue(bundled_dir, "sst2", "train").head(4000)
    return rte["text_a"].tolist() + rte["text_b"].tolist() + sst2["text_a"].tolist()


def build_rehearsal_inputs(root: str | Path = "rehearsal", bundled_dir: str | Path | None = None) -> dict[str, Path]:
    """Hub-layout datasets, the annotation file and three tiny checkpoints under ``root``."""
    root = Path(root)
    bundled = Path(bundled_dir) if bundled_dir is not None else DEFAULT_BUNDLED
    written = {
        "glue": write_glue_repo(root / "hub" / "nyu-mll" / "glue", bundled),
        "advglue": write_advglue_repo(root / "hub" / "AI-Secure" / "adv_glue", bundled),
        "annotations": copy_annotations(root / "advglue" / "dev_ann.json", bundled),
        "tokenizer": write_llama_style_tokenizer(root / "tokenizer", tokenizer_texts(bundled)),
    }
    for family, name in CHECKPOINTS.items():
        target = root / "checkpoints" / name
        write_checkpoint(target, family, written["tokenizer"], shard_size="40KB" if family == SHARDED else None)
        written[f"checkpoint_{family}"] = target
    return written
