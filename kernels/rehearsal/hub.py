"""Local dataset repositories in the layout of the hub's ``nyu-mll/glue`` and ``AI-Secure/adv_glue``.

Each repository is a directory with ``<config>/<split>-00000-of-00001.parquet`` files (written by
``datasets``, so the HF features, label names included, travel in the parquet metadata as they do on
the hub) and a ``README.md`` whose YAML header declares the configs and their data files, which is how
``datasets.load_dataset(repo, config, split=...)`` finds them. RTE is copied byte for byte from the
bundled HF parquet files; the other GLUE tasks and AdvGLUE are written from the bundled official files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from kernels.data.advglue import advglue_sets_of, read_json
from kernels.data.glue import read_bundled_glue
from kernels.data.tasks import ADVGLUE_HUB_CONFIGS, ADVGLUE_SETS, TASKS, TaskSpec, advglue_task

SHARD = "00000-of-00001"


def write_readme(root: Path, configs: dict[str, list[str]]) -> None:
    """The README YAML header that declares each config's splits and data files, as on the hub."""
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    (root / "README.md").write_text("\n".join(lines + ["---", ""]), encoding="utf-8")


def hf_features(text_fields, label_names):
    """The features of a GLUE / AdvGLUE config on the hub: text fields, ClassLabel ``label``, int32 ``idx``."""
    import datasets

    features = {field: datasets.Value("string") for field in text_fields}
    features["label"] = datasets.ClassLabel(names=list(label_names))
    features["idx"] = datasets.Value("int32")
    return datasets.Features(features)


def write_hf_split(root: Path, config: str, split: str, rows: dict, features) -> Path:
    """One split of one config as a hub parquet file, written by ``datasets`` with ``features``."""
    import datasets

    datasets.disable_progress_bars()
    target = root / config / f"{split}-{SHARD}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(target))
    return target


def glue_rows(frame: pd.DataFrame, spec: TaskSpec) -> dict:
    """A normalised GLUE frame back in the hub's column names."""
    rows = {spec.text_fields[0]: frame["text_a"].tolist()}
    if spec.is_pair:
        rows[spec.text_fields[1]] = frame["text_b"].tolist()
    rows["label"] = frame["label"].astype(int).tolist()
    rows["idx"] = frame["idx"].astype(int).tolist()
    return rows


def write_glue_repo(root: str | Path, bundled_dir: str | Path, tasks=("sst2", "rte")) -> Path:
    """``nyu-mll/glue`` layout with the train and validation splits of ``tasks`` (bundled data only)."""
    root, bundled_dir = Path(root), Path(bundled_dir)
    configs = {}
    for task in tasks:
        spec = TASKS[task]
        hf_copies = sorted((bundled_dir / "glue" / task / "hf_parquet").glob(f"*-{SHARD}.parquet"))
        if hf_copies:  # the hub's own files: copy them byte for byte
            (root / task).mkdir(parents=True, exist_ok=True)
            for path in hf_copies:
                shutil.copyfile(path, root / task / path.name)
        else:
            for split in ("train", "validation"):
                rows = glue_rows(read_bundled_glue(bundled_dir, task, split), spec)
                write_hf_split(root, task, split, rows, hf_features(spec.text_fields, spec.label_names))
        configs[task] = ["train", "validation"]
    write_readme(root, configs)
    return root


def write_advglue_repo(root: str | Path, bundled_dir: str | Path) -> Path:
    """``AI-Secure/adv_glue`` layout (configs ``adv_sst2`` ... ``adv_rte``, split ``validation``) from dev.json."""
    root, bundled_dir = Path(root), Path(bundled_dir)
    dev_path = bundled_dir / "advglue" / "dev.json"
    dev = advglue_sets_of(read_json(dev_path), str(dev_path))
    for name in ADVGLUE_SETS:
        spec = advglue_task(name)
        columns = spec.text_fields + ("label", "idx")
        rows = {column: [item[column] for item in dev[name]] for column in columns}
        write_hf_split(root, ADVGLUE_HUB_CONFIGS[name], "validation", rows,
                       hf_features(spec.text_fields, spec.label_names))
    write_readme(root, {ADVGLUE_HUB_CONFIGS[name]: ["validation"] for name in ADVGLUE_SETS})
    return root


def copy_annotations(target: str | Path, bundled_dir: str | Path) -> Path:
    """The authors' ``dev_ann.json`` (bundled byte-identical copy), where paper scale downloads it from."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(bundled_dir) / "advglue" / "dev_ann.json", target)
    json.loads(target.read_text(encoding="utf-8"))  # fail here, not in the workflow, on a broken copy
    return target
