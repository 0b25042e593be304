"""What paper scale needs beyond the demo, tested offline: one input template for every tokenizer,
evaluation in the training precision, kernel provenance and a hard fla requirement, bf16 weights on
disk, a computed disk plan, pinned annotation download, schema and code agreeing on dtypes, and
``import kernels.models`` registering the model families with transformers' Auto classes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors import safe_open

from kernels.data import DataValidationError, fetch_annotations, read_bundled_glue
from kernels.evaluation.predict import predict_encoded
from kernels.models import build_classifier
from kernels.ops.backend import kernel_provenance, require_fla
from kernels.ops.gla import chunk_gla, fused_recurrent_gla
from kernels.rehearsal.tokenizer import write_llama_style_tokenizer
from kernels.tokenization import encode_for_classification, load_tokenizer, train_tokenizer
from kernels.training import FinetuneHyperparams, encode_examples
from kernels.training.disk import disk_plan, merged_config
from kernels.training.loop import LOG_COLUMNS, SAVE_DTYPES, resolve_save_dtype, train_classifier, write_model_dir

from workflow_helpers import REPO, run_python

BUNDLED = REPO / "resources" / "data"


@pytest.fixture(scope="module")
def rte():
    return read_bundled_glue(BUNDLED, "rte", "train").iloc[:300]


@pytest.fixture(scope="module")
def llama_tokenizer(rte, tmp_path_factory):
    directory = tmp_path_factory.mktemp("llama_tok")
    write_llama_style_tokenizer(directory, rte["text_a"].tolist() + rte["text_b"].tolist(), vocab_size=600)
    return load_tokenizer(directory)


@pytest.fixture(scope="module")
def demo_tokenizer(rte):
    sst2 = read_bundled_glue(BUNDLED, "sst2", "train").iloc[:2000]
    texts = rte["text_a"].tolist() + rte["text_b"].tolist() + sst2["text_a"].tolist()
    return train_tokenizer(texts, vocab_size=800, min_frequency=2)


# ------------------------------------------------------------------------------------ input template

def test_llama_style_tokenizer_is_what_the_published_checkpoints_ship(llama_tokenizer):
    config = json.loads(Path(llama_tokenizer.name_or_path, "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "LlamaTokenizer" and config["pad_token"] is None
    assert (llama_tokenizer.unk_token_id, llama_tokenizer.bos_token_id, llama_tokenizer.eos_token_id) == (0, 1, 2)
    # its own post-processor: <s> A <s> B, no end-of-sequence token (the reason for the common template)
    ids = llama_tokenizer("A man sleeps.", "Nobody sleeps.")["input_ids"]
    assert ids[0] == 1 and ids.count(1) == 2 and 2 not in ids
    # byte fallback: a character never seen in training is encoded as bytes, not <unk>
    assert 0 not in llama_tokenizer("✓ ☃")["input_ids"]


def test_template_for_llama_style_tokenizer(llama_tokenizer):
    tok = llama_tokenizer
    single = encode_for_classification(tok, ["A man sleeps."], None, 64)[0]
    pair = encode_for_classification(tok, ["A man sleeps."], ["Nobody sleeps."], 64)[0]
    text_a = tok("A man sleeps.", add_special_tokens=False)["input_ids"]
    text_b = tok("Nobody sleeps.", add_special_tokens=False)["input_ids"]
    assert single == [tok.bos_token_id] + text_a + [tok.eos_token_id]
    assert pair == [tok.bos_token_id] + text_a + [tok.eos_token_id] + text_b + [tok.eos_token_id]


def test_template_for_demo_tokenizer_is_its_own(demo_tokenizer, rte):
    """The demo tokenizer already encodes as A </s> B </s>: the common template changes none of its inputs
    (so the demo's results do not move), truncated or not."""
    for max_length in (128, 24):
        own = demo_tokenizer(rte["text_a"].tolist(), rte["text_b"].tolist(), truncation=True,
                             max_length=max_length)["input_ids"]
        assert encode_for_classification(demo_tokenizer, rte["text_a"].tolist(), rte["text_b"].tolist(),
                                         max_length) == own


@pytest.mark.parametrize("max_length", [8, 16, 33])
def test_truncation_keeps_the_template(llama_tokenizer, demo_tokenizer, rte, max_length):
    for tok in (llama_tokenizer, demo_tokenizer):
        encoded = encode_examples(tok, rte, max_length)
        for ids in encoded.input_ids:
            assert len(ids) <= max_length
            assert ids[-1] == tok.eos_token_id  # the pooled token is always the final </s>
            assert ids.count(tok.eos_token_id) == 2  # A </s> B </s>: both texts keep a part


# ------------------------------------------------------------------------- evaluation in training dtype

@pytest.mark.heavy  # 60 s: trains three models to clear decisions
@pytest.mark.parametrize("family", ["transformer_pp", "gla", "mmfree"])
def test_bf16_evaluation_matches_float32_predictions(family, demo_tokenizer, tmp_path):
    """Predictions in the training precision (bf16 autocast) equal the float32 pass wherever float32's
    margin between the two classes exceeds 0.1 in probability; such near-ties are rare after training."""
    arch = {"hidden_size": 64, "num_hidden_layers": 2, "num_heads": 2} if family != "mmfree" else {
        "hidden_size": 64, "num_hidden_layers": 2}
    model = build_classifier(family, arch, vocab_size=len(demo_tokenizer), num_labels=2,
                             pad_token_id=demo_tokenizer.pad_token_id, seed=0)
    sst2 = read_bundled_glue(BUNDLED, "sst2", "train").iloc[:800]
    encoded = encode_examples(demo_tokenizer, sst2, 48)
    hp = FinetuneHyperparams(epochs=3, batch_size=32, lr=3e-3, max_length=48, dtype="bfloat16",
                             checkpoint_every=1000)
    train_classifier(model, encoded, hp, pad_token_id=demo_tokenizer.pad_token_id,
                     checkpoint_dir=tmp_path / "ckpt", progress=False)
    pred32, prob32 = predict_encoded(model, encoded, pad_token_id=demo_tokenizer.pad_token_id, dtype="float32")
    pred16, prob16 = predict_encoded(model, encoded, pad_token_id=demo_tokenizer.pad_token_id, dtype="bfloat16")
    margin = np.abs(2 * prob32 - 1)  # two classes: |p1 - p0|
    clear = margin > 0.1
    assert clear.mean() > 0.5, "training left too few clear decisions to compare"
    assert (pred16[clear] == pred32[clear]).all()
    assert np.abs(prob16 - prob32).max() < 0.1


def test_gla_ops_under_autocast_without_grad():
    """The inference path of the pure-PyTorch GLA ops writes into fp32 buffers; under bf16 autocast it
    used to fail ('Input dtypes must be the same'). They accumulate in fp32 whatever autocast says."""
    torch.manual_seed(0)
    q, k = torch.randn(2, 40, 2, 8).bfloat16(), torch.randn(2, 40, 2, 8).bfloat16()
    v = torch.randn(2, 40, 2, 8).bfloat16()
    g = (torch.nn.functional.logsigmoid(torch.randn(2, 40, 2, 8)) / 16).bfloat16()
    for op in (chunk_gla, fused_recurrent_gla):
        plain, _ = op(q, k, v, g)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            auto, _ = op(q, k, v, g)
        assert auto.dtype == torch.bfloat16
        torch.testing.assert_close(auto, plain)


# ------------------------------------------------------------------------------------- provenance

def test_provenance_says_which_kernels_and_why():
    info = kernel_provenance("cpu")
    assert info["kernels"] == "torch" and "cpu" in info["kernels_reason"]
    assert info["torch_version"] == torch.__version__
    import transformers
    assert info["transformers_version"] == transformers.__version__ and info["numpy_version"] == np.__version__
    # the checkout's commit: a moved accuracy can be traced to the code that produced it
    head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode == 0:
        assert info["code_version"].startswith(head.stdout.strip()[:7])
    with pytest.raises(RuntimeError, match="kernels.require_fla is true.*device cpu"):
        require_fla("cpu")


def test_fla_import_error_is_reported_not_swallowed():
    # A broken fla (here: its op module blocked) is an unusable fla, and the reason is kept.
    out = run_python("import sys; sys.modules['fla.ops.gla'] = None\n"
                     "from kernels.ops.backend import fla_import_error, fla_available\n"
                     "print(fla_available(), '|', fla_import_error())")
    available, reason = out.strip().split(" | ")
    assert available == "False" and "fla.ops.gla" in reason


def test_finetune_job_with_required_fla_stops_before_any_work(tmp_path):
    from kernels.training.job import finetune_job

    with pytest.raises(RuntimeError, match="fla's triton kernels will not run"):
        finetune_job(train_path=tmp_path / "absent.parquet", tokenizer_file=None, model_dir=tmp_path / "m",
                     family="gla", arch={}, pretrained=None, revision=None, hp={"device": "cpu"}, num_labels=2,
                     checkpoint_dir=tmp_path / "ckpt", seed=0, require_fla=True)
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------------------- disk

def test_weights_are_saved_in_the_training_dtype(demo_tokenizer, tmp_path):
    assert resolve_save_dtype("auto", "bfloat16") == "bfloat16"
    assert resolve_save_dtype(None, "float32") == "float32"
    with pytest.raises(ValueError, match="save_dtype"):
        resolve_save_dtype("float16", "float32")
    model = build_classifier("gla", {"hidden_size": 32, "num_hidden_layers": 1, "num_heads": 2},
                             vocab_size=len(demo_tokenizer), num_labels=2, pad_token_id=0, seed=0)
    master = {k: v.clone() for k, v in model.state_dict().items()}
    write_model_dir(tmp_path, model, demo_tokenizer, pd.DataFrame(columns=LOG_COLUMNS), save_dtype="bfloat16",
                    info={"note": "x"})
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    assert all(torch.equal(v, master[k]) for k, v in model.state_dict().items())  # master weights untouched
    assert json.loads((tmp_path / "finetune_info.json").read_text()) == {"note": "x"}


def test_readme_disk_numbers_are_the_computed_plan():
    plan = disk_plan(merged_config([REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"]))
    assert plan.finetuned_models == 45
    readme = (REPO / "README.md").read_text()
    for value in (plan.finetuned_gb, plan.pretrained_gb, plan.checkpoint_gb_per_job, plan.total_gb):
        assert f"{value:.1f} GB" in readme, value
    paper_fp32 = merged_config([REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"])
    paper_fp32["finetune"]["save_dtype"] = "float32"  # what the workflow used to write
    assert disk_plan(paper_fp32).finetuned_gb == pytest.approx(2 * plan.finetuned_gb, abs=0.2)


# -------------------------------------------------------------------------- annotations checksum

def test_annotation_download_is_pinned(tmp_path):
    source = BUNDLED / "advglue" / "dev_ann.json"
    pinned = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())["data"]["hub"]["advglue_annotations_sha256"]
    assert hashlib.sha256(source.read_bytes()).hexdigest() == pinned
    assert fetch_annotations(str(source), tmp_path / "ok", expected_sha256=pinned).is_file()
    changed = tmp_path / "dev_ann.json"
    changed.write_bytes(source.read_bytes().replace(b'"SemAttack"', b'"CompAttack"', 1))
    with pytest.raises(DataValidationError, match=rf"{re.escape(str(changed))}: SHA-256 [0-9a-f]{{64}} does not "
                                                  rf"match the pinned {pinned}.*advglue_annotations_sha256"):
        fetch_annotations(str(changed), tmp_path / "bad", expected_sha256=pinned)
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


# ------------------------------------------------------------------------------ schema vs runtime

def test_schema_dtypes_are_the_ones_the_code_accepts():
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    finetune = schema["$defs"]["finetune_settings"]["properties"]
    train_dtypes = schema["$defs"][finetune["dtype"]["$ref"].split("/")[-1]]["enum"]
    for dtype in train_dtypes:
        FinetuneHyperparams(dtype=dtype).validate("schema")
    for dtype in ("float16", "float64"):
        assert dtype not in train_dtypes
        with pytest.raises(ValueError):
            FinetuneHyperparams(dtype=dtype).validate("schema")
    assert finetune["save_dtype"]["enum"] == list(SAVE_DTYPES)


# ------------------------------------------------------------------------------- Auto registration

def test_import_kernels_models_registers_the_families(tmp_path):
    config = {"model_type": "gla", "hidden_size": 32, "num_hidden_layers": 1, "num_heads": 2, "vocab_size": 64}
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = run_python(
        "import kernels.models\n"
        "from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification\n"
        f"cfg = AutoConfig.from_pretrained({str(tmp_path)!r})\n"
        "print(type(cfg).__module__)\n"
        "for model_type in ('transformer', 'gla', 'hgrn_bit'):\n"
        "    c = AutoConfig.for_model(model_type, vocab_size=64, hidden_size=32, num_hidden_layers=1)\n"
        "    print(type(AutoModelForSequenceClassification.from_config(c)).__module__,"
        " type(AutoModelForCausalLM.from_config(c)).__name__)\n")
    lines = out.strip().splitlines()
    assert lines[0].startswith("kernels.models.gla")
    assert [line.split()[0].split(".")[2] for line in lines[1:]] == ["transformer", "gla", "hgrn_bit"]


def test_only_import_kernels_models_registers_the_families_as_documented():
    """``import kernels`` stays light and registers nothing (a fresh interpreter: registration is process-wide);
    ``import kernels.models`` is the one import that does, as its docstring and the README say."""
    probe = ("from transformers import AutoConfig\n"
             "for model_type in ('transformer', 'gla', 'hgrn_bit'):\n"
             "    try:\n"
             "        print(model_type, type(AutoConfig.for_model(model_type)).__module__)\n"
             "    except (KeyError, ValueError):\n"
             "        print(model_type, 'unregistered')\n")
    light = run_python("import sys, kernels\nprint('torch' in sys.modules)\n" + probe).split()
    assert light == ["False", "transformer", "unregistered", "gla", "unregistered", "hgrn_bit", "unregistered"]
    # (that `import kernels.models` registers them: test_import_kernels_models_registers_the_families)
    import kernels.models

    assert "``import kernels.models`` (this package)" in kernels.models.__doc__
    assert "``import kernels`` alone does not" in kernels.models.__doc__
    readme = (REPO / "README.md").read_text()
    assert "`import kernels.models` registers the three families" in readme
    assert "`import kernels` alone does not" in readme


# ------------------------------------------------------------------------------------ GPU check

def test_gpu_check_pieces_run_on_cpu():
    """The GPU check cannot run here; its layer comparison can: fla's GLA layer (it constructs on CPU)
    hands its weights to ours under the same names, and the comparison reports differences and ratios."""
    pytest.importorskip("fla.layers")
    import importlib.util as util

    spec = util.spec_from_file_location("bench_fla_layers", REPO / "benchmarks" / "bench_fla_layers.py")
    bench = util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ours, theirs = bench.gla_layers(64, torch.device("cpu"), torch.float32)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    x = torch.randn(2, 24, 64)
    result = bench.compare(bench.ForcedOps(ours, True), bench.ForcedOps(ours, False), x, 1, torch.device("cpu"))
    assert result["max_abs_diff"] == 0.0 and result["grad_max_abs_diff"] == 0.0 and result["time_ratio"] > 0
    script = (REPO / "benchmarks" / "gpu_check.sh").read_text()
    for piece in ("-m gpu", "paper_rehearsal.yaml", "gpu_rehearsal.yaml", "bench_fla_layers.py",
                  "bench_gpu_step.py", "gpu_check_env.py", "gpu_check_summary.py"):
        assert piece in script
    overlay = yaml.safe_load((REPO / "benchmarks" / "gpu_rehearsal.yaml").read_text())
    assert overlay == {"finetune": {"device": "cuda"}, "profile": {"device": "cuda"}, "attack": {"device": "cuda"},
                       "kernels": {"require_fla": True}}


# ------------------------------------------------------- hub column mapping of QQP, MNLI and QNLI

# The hub's own schemas (nyu-mll/glue), written out here and not taken from kernels.data.tasks, so that a
# wrong field or label table there fails: (text fields in text_a, text_b order, ClassLabel names by id).
HUB_SCHEMAS = {
    "qqp": (("question1", "question2"), ("not_duplicate", "duplicate")),
    "mnli": (("premise", "hypothesis"), ("entailment", "neutral", "contradiction")),
    "qnli": (("question", "sentence"), ("entailment", "not_entailment")),
}


def _hub_rows_from_advglue(adv_set: str, fields: tuple[str, str]) -> dict:
    """Real QQP / MNLI texts and labels (the AdvGLUE dev items of that task) in the hub's column names."""
    items = json.loads((BUNDLED / "advglue" / "dev.json").read_text(encoding="utf-8"))[adv_set]
    rows = {field: [item[field] for item in items] for field in fields}
    rows["label"] = [item["label"] for item in items]
    rows["idx"] = [item["idx"] for item in items]
    return rows


@pytest.mark.parametrize("task", ["qqp", "mnli", "qnli"])
def test_hub_column_mapping_of_tasks_without_bundled_training_data(task, tmp_path, monkeypatch):
    """The tasks the rehearsal cannot run end to end: frames in their real hub schemas (field names,
    ClassLabel names, int32 idx, MNLI's two validation splits) map to text_a / text_b / label as the
    GLUE TSVs do. QNLI validation is the bundled official file; QQP and MNLI use real items of theirs."""
    import datasets

    from kernels.data import read_bundled_glue, read_hub_glue
    from kernels.rehearsal.hub import hf_features, write_hf_split, write_readme

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    (first, second), label_names = HUB_SCHEMAS[task]
    if task == "qnli":
        frame = read_bundled_glue(BUNDLED, "qnli", "validation")
        rows = {"question": frame["text_a"].tolist(), "sentence": frame["text_b"].tolist(),
                "label": frame["label"].tolist(), "idx": frame["idx"].tolist()}
        splits = {"validation": rows}
    elif task == "qqp":
        splits = {"validation": _hub_rows_from_advglue("qqp", (first, second))}
    else:
        splits = {"validation_matched": _hub_rows_from_advglue("mnli", (first, second)),
                  "validation_mismatched": _hub_rows_from_advglue("mnli-mm", (first, second))}
    root = tmp_path / "glue"
    for split, rows in splits.items():
        write_hf_split(root, task, split, rows, hf_features((first, second), label_names))
    write_readme(root, {task: list(splits)})
    for split, rows in splits.items():
        frame = read_hub_glue(str(root), task, split)
        assert frame["text_a"].tolist() == rows[first]
        assert frame["text_b"].tolist() == rows[second]
        assert frame["label"].tolist() == rows["label"] and frame["idx"].tolist() == rows["idx"]
    if task == "mnli":  # the premise is the longer text in every item here: text_a is not the hypothesis
        frame = read_hub_glue(str(root), task, "validation_matched")
        assert (frame["text_a"].str.len() > frame["text_b"].str.len()).mean() > 0.8
    if task == "qnli":  # the hub path and the bundled TSV reader agree on the official file
        assert read_hub_glue(str(root), "qnli", "validation").equals(read_bundled_glue(BUNDLED, "qnli", "validation"))


def _boundary_values(spec: dict) -> list:
    """Values at and just beyond each bound of a JSON-schema number / integer property, and its enum."""
    if "enum" in spec:
        return list(spec["enum"])
    step = 1 if spec.get("type") == "integer" else 1e-9
    values = []
    for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        if key in spec:
            values += [spec[key] - step, spec[key], spec[key] + step]
    return values


def test_every_finetune_value_the_schema_accepts_the_code_accepts():
    """One source of truth in practice: walk each enum and bound of the finetune settings through
    FinetuneHyperparams (and the save-dtype resolver); nothing the schema lets through may fail in a job."""
    import jsonschema

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    settings = schema["$defs"]["finetune_settings"]
    validator = jsonschema.Draft202012Validator({"$defs": schema["$defs"], **settings})
    resolver = {"$ref": lambda spec: schema["$defs"][spec["$ref"].split("/")[-1]]}
    checked = 0
    for name, spec in settings["properties"].items():
        spec = resolver["$ref"](spec) if "$ref" in spec else spec
        if name in ("resources", "threads"):
            continue
        for value in _boundary_values(spec):
            if not validator.is_valid({name: value}):
                continue
            checked += 1
            if name == "save_dtype":
                resolve_save_dtype(value, "float32")
            elif name == "max_tokens_per_step":
                # compared with max_length, which the workflow checks at start (test_workflow_config)
                FinetuneHyperparams.from_dict({name: value, "max_length": 8}, source=f"finetune.{name}")
            else:
                FinetuneHyperparams.from_dict({name: value}, source=f"finetune.{name}")
    assert checked >= 15


def test_every_profile_value_the_schema_accepts_the_code_accepts():
    """The same walk for the profile section, through kernels.profiling.settings' own parser (array
    properties: every enum value of their items, and their item bounds)."""
    import jsonschema

    from kernels.profiling.settings import settings_from_dict

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    profile = schema["properties"]["profile"]
    validator = jsonschema.Draft202012Validator({"$defs": schema["$defs"], **profile, "required": []})
    checked = 0
    for name, spec in profile["properties"].items():
        if name == "resources":
            continue
        spec = schema["$defs"][spec["$ref"].split("/")[-1]] if "$ref" in spec else spec
        items = spec.get("items")
        if items is not None:
            items = schema["$defs"][items["$ref"].split("/")[-1]] if "$ref" in items else items
            candidates = [[value] for value in _boundary_values(items)]
        else:
            candidates = _boundary_values(spec)
        for value in candidates:
            if validator.is_valid({name: value}):
                # max_repeats is compared with min_repeats, which the workflow checks at start
                context = {"min_repeats": 1} if name == "max_repeats" else {}
                settings_from_dict({name: value, **context}, source=f"profile.{name}")
                checked += 1
    assert checked >= 12
