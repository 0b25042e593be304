"""family: fla beside family: hf in one process: fla's Auto registrations do not change which implementation
``hf`` runs, fla checkpoints load with every tensor accounted for, and fla-hub's Mamba layout is transformers'.
(fla's forwards need triton: tests/test_zoo_rehearsal.py runs the ones triton's interpreter can.)"""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("fla") is None or importlib.util.find_spec("triton") is None,
                                reason="fla (flash-linear-attention) with triton is not installed")


def test_hf_runs_transformers_mamba_even_after_fla_took_the_auto_mapping():
    import fla  # noqa: F401  registers mamba / mamba2 with exist_ok=True
    from transformers import CONFIG_MAPPING

    from kernels.families import family

    assert CONFIG_MAPPING["mamba"].__module__.startswith("fla.")  # what AutoConfig would now give
    for model_type in ("mamba", "mamba2"):
        assert family("hf").classes(model_type).backbone.__module__.startswith("transformers.models.")
        assert family("fla").classes(model_type).backbone.__module__.startswith("fla.models.")
    model = family("hf").build({"model_type": "mamba", "hidden_size": 16, "num_hidden_layers": 1, "state_size": 4},
                               vocab_size=50, num_labels=2, pad_token_id=0, seed=0)
    assert type(model.model).__module__.startswith("transformers.models.mamba")
    assert family("hf").implementation(model, "cpu")["library"] == "transformers"


def test_fla_checkpoint_loads_every_tensor_and_fla_mamba_has_transformers_names(tmp_path):
    from kernels.families import family
    from kernels.models.generic import resolve

    fla_classes = resolve("fla", "retnet")
    torch.manual_seed(0)
    causal = fla_classes.causal_lm(fla_classes.config(hidden_size=32, num_hidden_layers=2, num_heads=2,
                                                      vocab_size=64))
    causal.save_pretrained(tmp_path, safe_serialization=True)
    model = family("fla").load_pretrained(tmp_path, num_labels=3)
    info = model.checkpoint_loading_info
    assert info["loaded_tensors"] == len(causal.state_dict()) - 1 == len(model.state_dict()) - 1
    assert info["new_tensors"] == ["score.weight"] and info["unused_checkpoint_keys"] == ["lm_head.weight"]
    assert type(model.model).__name__ == "RetNetModel" and "fla's triton kernels" in \
        family("fla").implementation(model, "cuda")["path"]
    fields = {"hidden_size": 16, "num_hidden_layers": 2, "state_size": 4, "intermediate_size": 32,
              "vocab_size": 40, "tie_word_embeddings": False}
    names = {}
    for library in ("fla", "transformers"):
        classes = resolve(library, "mamba")
        names[library] = {k: tuple(v.shape) for k, v in classes.causal_lm(classes.config(**fields)).state_dict().items()}
    assert names["fla"].keys() == names["transformers"].keys()


def test_readme_zoo_disk_and_gpu_hours_are_the_computed_plans():
    from pathlib import Path

    from kernels.training.compute import compute_plan
    from kernels.training.disk import disk_plan, merged_config

    repo = Path(__file__).resolve().parents[1]
    config = merged_config([repo / "config" / name for name in ("config.yaml", "paper.yaml", "zoo.yaml")])
    readme = (repo / "README.md").read_text()
    disk = disk_plan(config)
    assert disk.uncounted_models == ("gsa",) and disk.finetuned_models == 9 * 5 * 3
    for value in (disk.finetuned_gb, disk.pretrained_gb, disk.checkpoint_gb_per_job, disk.total_gb):
        assert f"{value:.1f} GB" in readme, value
    compute = compute_plan(config)
    assert compute["uncounted_models"] == ["gsa"] and len(compute["models"]) == 9
    assert f"{compute['total_gpu_hours']:.1f} GPU-hours" in readme
    # the recorded RetNet fields give the published model page's size (1.35B parameters)
    from kernels.families import family
    from kernels.rehearsal.published import ZOO_CONFIGS

    assert round(family("fla").parameter_counts(ZOO_CONFIGS["fla-hub/retnet-1.3B-100B"].config)[1] / 1e9, 2) == 1.35
    methods = {name: row["method"] for name, row in compute["models"].items()}
    assert methods["transformer_pp"] == "formula" and methods["retnet"] == "6 x linear weights"
