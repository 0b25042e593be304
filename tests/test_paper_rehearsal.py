"""The paper-scale rehearsal, run as the README says: ``python -m kernels.rehearsal rehearsal``, then
``snakemake --cores 2 report --configfile config/paper.yaml tests/configs/paper_rehearsal.yaml``. Everything
but locations and sizes comes from config/paper.yaml; the checks are what a user would look at."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors import safe_open

from workflow_helpers import REPO, planned_jobs, run_snakemake

pytestmark = pytest.mark.slow

PAPER = REPO / "config" / "paper.yaml"
REHEARSAL = REPO / "tests" / "configs" / "paper_rehearsal.yaml"
MODELS = ("transformer_pp", "gla", "mmfree")
# What the rehearsal may change: where things are, how many, and the device (this machine has no GPU).
LOCATION_AND_SIZE_KEYS = {
    "run_name", "data.hub.glue", "data.hub.advglue", "data.hub.advglue_annotations_url",
    "data.max_train_examples", "data.max_eval_examples", "tasks", "seeds",
    *(f"models.{m}.pretrained" for m in MODELS),
    "finetune.device", "finetune.threads", "evaluate.threads", "kernels.require_fla",
    "profile.seq_lens", "profile.batch_sizes", "profile.decode_tokens", "profile.warmup", "profile.min_repeats",
    "profile.time_budget_s", "profile.device", "profile.threads",
    "attack.tasks", "attack.examples", "attack.query_budget", "attack.bootstrap_samples", "attack.threads", "attack.device",
    "attack.trigger.steps", "attack.trigger.candidates", "attack.trigger.beam", "attack.trigger.search_examples",
    "attack.wordnet.dir",
}


def leaf_keys(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        keys |= leaf_keys(value, f"{path}.") if isinstance(value, dict) else {path}
    return keys


def test_rehearsal_swaps_only_locations_and_sizes():
    overlay = yaml.safe_load(REHEARSAL.read_text())
    assert leaf_keys(overlay) <= LOCATION_AND_SIZE_KEYS, leaf_keys(overlay) - LOCATION_AND_SIZE_KEYS


def test_paper_jobs_declare_one_gpu(tmp_path):
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(PAPER))
    blocks = re.findall(r"^rule (\w+):\n(.*?)(?=^\[|\Z)", proc.stdout, flags=re.M | re.S)
    gpu = {}
    for rule, body in blocks:
        match = re.search(r"resources: .*", body)
        gpu.setdefault(rule, set()).add(re.search(r"\bgpu=(\d+)", match.group(0)).group(1)
                                        if match and "gpu=" in match.group(0) else None)
    for rule in ("finetune", "evaluate", "profile"):
        assert gpu[rule] == {"1"}, (rule, gpu[rule])
    assert gpu["prepare_glue"] <= {None, "0"}
    # ... and the README's one-machine command caps them at one GPU job at a time
    assert "snakemake --cores 8 --resources gpu=1 report --configfile config/paper.yaml" in (REPO / "README.md").read_text()


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("rehearsal")
    subprocess.run([sys.executable, "-m", "kernels.rehearsal", "rehearsal"], cwd=workdir, check=True,
                   capture_output=True, text=True, timeout=600)
    run_snakemake(workdir, "--cores", "2", "report", "--configfile", str(PAPER), str(REHEARSAL), timeout=1500)
    return workdir


def readme_output_paths(root: Path, tasks, seeds, attack_tasks) -> list[Path]:
    """Every output path of the README's "Outputs" table, its wildcards expanded for this run."""
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Outputs", 1)[1].split("\n## ", 1)[0]
    templates = re.findall(r"^\| `(results/[^`]+)`", table, flags=re.M)
    recipes = yaml.safe_load(PAPER.read_text())["attack"]["recipes"]
    values = {"model": MODELS, "task": tasks, "seed": seeds, "split": ("train", "validation"),
              "advtask": ("sst2", "qqp", "mnli", "mnli-mm", "qnli", "rte"),
              "recipe": [r for r in recipes if r != "universal_trigger"]}  # the trigger has its own files
    paths = []
    for template in templates:
        if template == "results/tokenizer/":
            continue  # the from-scratch models' tokenizer: pretrained checkpoints bring their own
        names = re.findall(r"\{(\w+)\}", template)
        options = {**values, "task": attack_tasks} if template.startswith("results/attacks/") else values
        for combo in itertools.product(*(options[n] for n in names)):
            path = template
            for name, value in zip(names, combo):
                path = path.replace(f"{{{name}}}", str(value))
            matches = sorted(root.glob(path)) if "*" in path else [root / path]
            assert matches, f"README output {template}: nothing matches {path}"
            paths += matches
    assert len(templates) >= 10
    return paths


@pytest.mark.heavy
def test_every_readme_output_exists(rehearsal):
    overlay = yaml.safe_load(REHEARSAL.read_text())
    for path in readme_output_paths(rehearsal, overlay["tasks"], overlay["seeds"], overlay["attack"]["tasks"]):
        assert path.exists(), path
        if path.is_file():
            assert path.stat().st_size > 0, path
    assert (rehearsal / "results/report/index.html").read_text().count("vega") > 0


@pytest.mark.heavy
def test_every_backbone_tensor_came_from_the_checkpoint(rehearsal):
    for model in MODELS:
        for task in ("sst2", "rte"):
            info = json.loads((rehearsal / f"results/models/{model}/{task}/seed0/finetune_info.json").read_text())
            loaded = info["checkpoint"]
            assert loaded["new_tensors"] == ["score.weight"], (model, loaded)
            assert all(key.startswith("lm_head.") for key in loaded["unused_checkpoint_keys"]), loaded
            checkpoint = rehearsal / info["pretrained"]
            index = checkpoint / "model.safetensors.index.json"
            keys = (json.loads(index.read_text())["weight_map"] if index.exists() else
                    safe_open(str(checkpoint / "model.safetensors"), "pt").keys())
            backbone = [k for k in keys if not k.startswith("lm_head.")]
            assert loaded["loaded_tensors"] == len(backbone), (model, loaded["loaded_tensors"], len(backbone))
            log = (rehearsal / f"logs/finetune/{model}/{task}/seed0.log").read_text()
            assert f"loaded {len(backbone)} backbone tensors" in log and "newly initialised: ['score.weight']" in log
    assert (rehearsal / "rehearsal/checkpoints/mmfree/model.safetensors.index.json").exists()  # sharded one


@pytest.mark.heavy
def test_paper_precision_disk_and_provenance(rehearsal):
    paper = yaml.safe_load(PAPER.read_text())
    for model in MODELS:
        model_dir = rehearsal / f"results/models/{model}/sst2/seed0"
        info = json.loads((model_dir / "finetune_info.json").read_text())
        assert info["train_dtype"] == paper["finetune"]["dtype"] == "bfloat16"
        assert info["save_dtype"] == "bfloat16"
        with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
            assert {f.get_tensor(k).dtype.__str__() for k in f.keys()} == {"torch.bfloat16"}
        assert info["provenance"]["kernels"] == "torch" and "cpu" in info["provenance"]["kernels_reason"]
        assert info["provenance"]["fla_kernel_calls"] == 0  # counted: on CPU fla's kernels never run
        metrics = json.loads((rehearsal / f"results/eval/{model}/sst2/seed0/metrics.json").read_text())
        assert metrics["provenance"]["autocast_dtype"] == "bfloat16"
        assert metrics["provenance"]["fla_kernel_calls"] == 0
        efficiency = pd.read_csv(rehearsal / f"results/efficiency/{model}.csv")
        assert set(efficiency["kernels"]) == {"torch"} and set(efficiency["fla_kernel_calls"]) == {0}
    assert not any((rehearsal / "results").glob("checkpoints/**/*.safetensors"))  # removed once written


@pytest.mark.heavy
def test_pooled_token_is_eos_for_the_llama_style_tokenizer(rehearsal):
    from kernels.tokenization import load_tokenizer
    from kernels.training import encode_examples

    model_dir = rehearsal / "results/models/gla/rte/seed0"
    tokenizer = load_tokenizer(model_dir)
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>"  # Llama has no pad token
    frame = pd.read_parquet(rehearsal / "results/data/glue/rte/validation.parquet")
    for ids in encode_examples(tokenizer, frame, 256).input_ids:
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert ids.count(tokenizer.eos_token_id) == 2


@pytest.mark.heavy
def test_rehearsal_rerun_has_nothing_to_do(rehearsal):
    assert planned_jobs(rehearsal, "report", "--configfile", str(PAPER), str(REHEARSAL)) == {}
