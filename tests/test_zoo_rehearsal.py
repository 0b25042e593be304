"""The zoo rehearsal, run as the README says: ``python -m kernels.rehearsal rehearsal && python -m
kernels.rehearsal.zoo rehearsal``, then ``snakemake --cores 2 report --configfile config/paper.yaml
config/zoo.yaml tests/configs/paper_rehearsal.yaml tests/configs/zoo_rehearsal.yaml``.

Tiny checkpoints in the published layouts (fla's classes write the fla-hub ones, transformers' save_pretrained a
Mamba2 and an RWKV) go through the real loading path with every backbone tensor accounted for; the
transformers-native ones run the whole DAG on CPU and appear in every section of the report; fla's types run a
forward and backward under triton's CPU interpreter where it can run their kernels."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors import safe_open

from workflow_helpers import REPO, planned_jobs, run_python, run_snakemake

pytestmark = pytest.mark.slow

CONFIGS = [REPO / "config" / "paper.yaml", REPO / "config" / "zoo.yaml", REPO / "tests" / "configs" / "paper_rehearsal.yaml",
           REPO / "tests" / "configs" / "zoo_rehearsal.yaml"]
GENERIC = ("mamba_hf", "mamba2")  # transformers' own implementations, added by config alone
FLA_TYPES = ("retnet", "hgrn", "hgrn2", "delta_net", "mamba")
# fla types whose training path triton's interpreter runs on CPU (RetNet's and HGRN's use chunk kernels it rejects)
INTERPRETABLE = ("hgrn2", "delta_net", "mamba")
HAS_FLA = importlib.util.find_spec("fla") is not None and importlib.util.find_spec("triton") is not None


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("zoo")
    # the checkout's package, whichever one is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
    for module in ("kernels.rehearsal", "kernels.rehearsal.zoo"):
        subprocess.run([sys.executable, "-m", module, "rehearsal"], cwd=workdir, check=True, capture_output=True,
                       text=True, timeout=600, env=env)
    run_snakemake(workdir, "--cores", "2", "report", "--configfile", *map(str, CONFIGS), timeout=1800)
    return workdir


def _model_dir(root: Path, model: str, task: str = "sst2") -> Path:
    return root / f"results/models/{model}/{task}/seed0"


@pytest.mark.heavy
def test_transformers_native_models_load_every_tensor_and_record_their_implementation(rehearsal):
    for model in GENERIC:
        info = json.loads((_model_dir(rehearsal, model) / "finetune_info.json").read_text())
        checkpoint = rehearsal / info["pretrained"]
        with safe_open(str(checkpoint / "model.safetensors"), "pt") as f:
            backbone = [k for k in f.keys() if not k.startswith("lm_head.")]
        assert info["checkpoint"]["loaded_tensors"] == len(backbone), (model, info["checkpoint"])
        assert info["checkpoint"]["new_tensors"] == ["score.weight"]
        assert info["checkpoint"]["unused_checkpoint_keys"] == ["lm_head.weight"]
        assert info["implementation"]["library"] == "transformers" and "slow path" in info["implementation"]["path"]
        metrics = json.loads((rehearsal / f"results/eval/{model}/sst2/seed0/metrics.json").read_text())
        assert metrics["provenance"]["implementation"]["backbone_class"] == info["implementation"]["backbone_class"]
        assert metrics["provenance"]["autocast_dtype"] == "bfloat16"  # evaluation in the training precision
    # fla-hub's Mamba layout, read by transformers' own class (not fla's, although fla is imported in the job)
    assert json.loads((_model_dir(rehearsal, "mamba_hf") / "finetune_info.json").read_text())[
        "implementation"]["backbone_module"].startswith("transformers.models.mamba")


@pytest.mark.heavy
def test_every_stage_produced_its_outputs_for_the_generic_models(rehearsal):
    overlay = yaml.safe_load(CONFIGS[2].read_text())
    recipes = [r for r in yaml.safe_load(CONFIGS[0].read_text())["attack"]["recipes"] if r != "universal_trigger"]
    for model in GENERIC:
        for task in overlay["tasks"]:
            assert (rehearsal / f"results/eval/{model}/{task}/seed0/predictions.parquet").is_file()
        for recipe in recipes:
            summary = json.loads((rehearsal / f"results/attacks/{model}/sst2/seed0/{recipe}.json").read_text())
            assert summary["successful"] + summary["failed"] + summary["skipped"] == overlay["attack"]["examples"]
        efficiency = pd.read_csv(rehearsal / f"results/efficiency/{model}.csv")
        assert set(efficiency["mode"]) == {"train", "prefill", "decode"} and set(efficiency["status"]) == {"ok"}
        assert set(efficiency["flops_source"]) == {"FlopCounterMode"}
        decode = efficiency[efficiency["mode"] == "decode"]
        assert decode["state_mb"].nunique() == 1 and decode["state_mb"].iloc[0] > 0  # a recurrent state
        assert efficiency["implementation"].str.contains("slow path").all()
    # the crossover compares with the configured baseline (report.baseline), here transformers' Mamba
    html = (rehearsal / "results/report/index.html").read_text()
    assert "than Mamba 1.3B (transformers)" in html


@pytest.mark.heavy
def test_generic_models_appear_in_every_section_of_the_report(rehearsal):
    html = (rehearsal / "results/report/index.html").read_text()
    labels = {m: yaml.safe_load(c.read_text())["models"][m]["label"]
              for c in CONFIGS for m in GENERIC if m in (yaml.safe_load(c.read_text()).get("models") or {})
              and "label" in yaml.safe_load(c.read_text())["models"][m]}
    sections = re.findall(r'<section id="([^"]+)">(.*?)</section>', html, flags=re.S)
    assert len(sections) >= 8
    for section_id, body in sections:
        if section_id in ("missing-pieces", "config"):
            continue
        for model, label in labels.items():
            assert label in body or json.dumps(label)[1:-1] in body, (section_id, label)
    assert "slow path" in html and 'id="implementations"' in html


@pytest.mark.heavy
def test_zoo_rehearsal_rerun_has_nothing_to_do(rehearsal):
    assert planned_jobs(rehearsal, "report", "--configfile", *map(str, CONFIGS)) == {}


@pytest.mark.heavy
@pytest.mark.skipif(not HAS_FLA, reason="fla (flash-linear-attention) with triton is not installed")
def test_fla_stand_ins_load_every_tensor_and_train_under_the_interpreter(rehearsal):
    for name in FLA_TYPES:
        config = json.loads((rehearsal / "rehearsal/zoo" / name / "config.json").read_text())
        assert "transformers_version" in config and config["vocab_size"] < 32000  # published fields, tiny sizes
    script = textwrap.dedent(f"""
        import json, os
        import triton.runtime.autotuner as autotuner

        def _time_nothing(self):  # no GPU to time autotuning candidates with: run each once
            def bench(kernel_call, quantiles=None, **_):
                kernel_call()
                return [1.0, 1.0, 1.0] if quantiles else 1.0
            return bench

        autotuner.Autotuner.do_bench = property(_time_nothing)
        import torch
        from safetensors import safe_open
        from kernels.families import family

        results = {{}}
        for name in {FLA_TYPES!r}:
            path = os.path.join({str(rehearsal / "rehearsal/zoo")!r}, name)
            model = family("fla").load_pretrained(path, num_labels=2, config_overrides={{"pad_token_id": 0}})
            with safe_open(os.path.join(path, "model.safetensors"), "pt") as f:
                backbone = [k for k in f.keys() if not k.startswith("lm_head.")]
            info = model.checkpoint_loading_info
            result = {{"every_tensor": info["loaded_tensors"] == len(backbone) == len(model.state_dict()) - 1,
                       "new": info["new_tensors"], "class": type(model.model).__module__}}
            if name in {INTERPRETABLE!r}:
                ids = torch.randint(3, 100, (2, 9), generator=torch.Generator().manual_seed(0))
                mask = torch.ones_like(ids)
                mask[1, 6:] = 0
                model.train()
                loss = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1])).loss
                loss.backward()
                result["finite"] = bool(torch.isfinite(loss))
                result["grads"] = sum(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())
                result["params"] = len(list(model.parameters()))
            results[name] = result
        print(json.dumps(results))
    """)
    out = run_python(script, env={**os.environ, "TRITON_INTERPRET": "1"}, timeout=900)
    results = json.loads(out.strip().splitlines()[-1])
    for name in FLA_TYPES:
        assert results[name]["every_tensor"] and results[name]["new"] == ["score.weight"], results[name]
        assert results[name]["class"].startswith("fla.models."), results[name]
    for name in INTERPRETABLE:
        assert results[name]["finite"] and results[name]["grads"] == results[name]["params"], results[name]
