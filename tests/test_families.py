"""The family registry (kernels.families) and the generic families' classifier, on tiny transformers-native
models (Mamba2, Mamba, RWKV: architectures this package has no code for), without fla.

Each stage of a generic family has a test that fails when it goes wrong: the head pooling another token than
the final ``</s>``, a backbone tensor not loaded from the checkpoint, the decode state mis-measured, FLOPs
without a formula not counted, activation checkpointing silently ignored, the plan-time check importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from test_training_support import finetune_hp, make_tokenizer, sentiment_frame
from workflow_helpers import run_python, run_snakemake

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
MAMBA2 = {"model_type": "mamba2", "hidden_size": 32, "num_hidden_layers": 2, "expand": 2, "num_heads": 4,
          "head_dim": 16, "state_size": 8, "n_groups": 1, "chunk_size": 16}
MAMBA = {"model_type": "mamba", "hidden_size": 32, "num_hidden_layers": 2, "expand": 2, "state_size": 8,
         "time_step_rank": 4}


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def hf():
    from kernels.families import family

    return family("hf")


def tiny(tokenizer, arch=MAMBA2, seed: int = 0, num_labels: int = 2):
    return hf().build(arch, vocab_size=len(tokenizer), num_labels=num_labels, pad_token_id=tokenizer.pad_token_id,
                      seed=seed, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)


def encode(tokenizer, pairs, max_length: int = 48):
    from kernels.tokenization import classification_encoder
    from kernels.training.batching import pad_batch

    encoder = classification_encoder(tokenizer, max_length)
    if pairs[0][1] is None:
        encodings = encoder.encode_batch([a for a, _ in pairs])
    else:
        encodings = encoder.encode_batch(pairs)
    return pad_batch([list(e.ids) for e in encodings], tokenizer.pad_token_id)


# ------------------------------------------------------------------------------------ registry, plan time

def test_schema_lists_exactly_the_registered_families():
    from kernels.families import names

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    assert schema["properties"]["models"]["additionalProperties"]["properties"]["family"]["enum"] == names()


def test_plan_time_layer_imports_neither_torch_nor_transformers():
    # as rules/common.smk loads it: a package of its own, from its directory
    code = f"""
import importlib.util, sys
directory = {str(REPO / 'kernels' / 'families')!r}
spec = importlib.util.spec_from_file_location('_families', directory + '/__init__.py',
                                              submodule_search_locations=[directory])
families = importlib.util.module_from_spec(spec); sys.modules['_families'] = families; spec.loader.exec_module(families)
print(families.model_errors('m', {{'family': 'hf', 'arch': {{'model_type': 'mamba2', 'hidden_size': 8}}}}))
print(families.model_errors('f', {{'family': 'fla', 'arch': {{'model_type': 'retnet', 'num_heads': 2}}}}))
print(families.model_errors('g', {{'family': 'gla', 'arch': {{'hidden_size': 64}}}}))
print(sorted(m for m in ('torch', 'transformers', 'fla') if m in sys.modules))
"""
    out = run_python(code).splitlines()
    assert out[0] == "[]"
    assert out[2] == "[]"
    assert out[3] == "[]", out


def test_config_errors_name_the_key(tmp_path):
    from kernels.families import Declaration, library_error, model_errors

    def errors(entry):
        return model_errors("zoo", entry)

    assert errors({"family": "hf", "arch": {"model_type": "mamba3x"}})[0].startswith(
        "models.zoo.arch.model_type: 'mamba3x' is not a model type transformers implements")
    assert errors({"family": "hf", "arch": {}})[0].startswith("models.zoo.arch.model_type: family 'hf' built from")
    unknown = errors({"family": "hf", "arch": {**MAMBA2, "num_layers": 2, "vocab_size": 9}})
    assert unknown[0].startswith("models.zoo.arch.num_layers: unknown field of the 'mamba2' config class")
    assert "state_size" in unknown[0] and unknown[1].startswith("models.zoo.arch.vocab_size: set by the workflow")
    assert errors({"family": "hf", "arch": MAMBA2}) == []
    assert errors({"family": "gla", "arch": {"num_layers": 2}})[0].startswith("models.zoo.arch.num_layers")
    missing = Declaration("x", "generic", "x", "kernels.families.generic:FlaFamily", "no_such_library_for_tests",
                          distribution="no-such-dist", install_hint="pip install nothing")
    assert library_error(missing, "models.zoo").startswith("models.zoo.family: family 'x' needs no-such-dist")
    # a local checkpoint of a model type the family cannot load, or one that needs remote code
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gla"}))
    assert errors({"family": "transformer_pp", "arch": {}, "pretrained": str(tmp_path)})[0].startswith(
        "models.zoo.pretrained:")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "my_remote", "auto_map": {"AutoModel": "x.Y"}}))
    message = errors({"family": "hf", "arch": {}, "pretrained": str(tmp_path)})[0]
    assert "my_remote" in message and "remote code, which is never run" in message


def test_workflow_start_rejects_a_bad_generic_model(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"models": {"m2": {"family": "hf", "label": "M2",
                                                         "arch": {"model_type": "mamba2", "hiden_size": 8}}}}))
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "models.m2.arch.hiden_size: unknown field of the 'mamba2' config class" in out


# ------------------------------------------------------------------------------------------ the classifier

def test_head_pools_the_final_eos_of_the_template(tokenizer):
    model = tiny(tokenizer).eval()
    ids, mask = encode(tokenizer, [("the film is superb", None), ("the cast is dull from start to finish", None)])
    last = mask.sum(1) - 1
    assert (ids[torch.arange(2), last] == tokenizer.eos_token_id).all()  # the template's final </s>
    assert mask[0, -1] == 0  # the first row is padded on the right
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
        hidden = model.model(input_ids=ids).last_hidden_state
        assert torch.allclose(logits, model.score(hidden[torch.arange(2), last]), atol=1e-6)
        # padding after the text changes nothing; the final </s> itself does
        padded = ids.clone()
        padded[0, last[0] + 1:] = 5
        assert torch.equal(model(input_ids=padded, attention_mask=mask).logits, logits)
        moved = ids.clone()
        moved[0, last[0]] = 5
        assert not torch.allclose(model(input_ids=moved, attention_mask=mask).logits[0], logits[0])


def test_save_pretrained_round_trips_with_safetensors_only(tokenizer, tmp_path):
    model = tiny(tokenizer, num_labels=3).eval()
    model.save_pretrained(tmp_path, safe_serialization=True)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "backbone_classifier"
    assert (config["backbone_library"], config["backbone_class"], config["backbone_model_type"]) == (
        "transformers", "Mamba2Model", "mamba2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    assert set(load_file(tmp_path / "model.safetensors")) == set(model.state_dict())
    loaded = hf().load_finetuned(tmp_path)
    ids, mask = encode(tokenizer, [("the story is moving", None)])
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids, attention_mask=mask).logits,
                           model(input_ids=ids, attention_mask=mask).logits)


def _causal_checkpoint(tokenizer, directory: Path, arch=MAMBA2):
    from kernels.models.generic import resolve

    fields = dict(arch)
    classes = resolve("transformers", fields.pop("model_type"))
    torch.manual_seed(1)
    causal = classes.causal_lm(classes.config(vocab_size=len(tokenizer), tie_word_embeddings=False, **fields))
    causal.save_pretrained(directory, safe_serialization=True)
    return causal


def test_pretrained_checkpoint_loads_every_backbone_tensor(tokenizer, tmp_path):
    from kernels.models.common import CheckpointError

    causal = _causal_checkpoint(tokenizer, tmp_path / "ckpt")
    model = hf().load_pretrained(tmp_path / "ckpt", num_labels=2, config_overrides={"pad_token_id": 0})
    info = model.checkpoint_loading_info
    backbone = {k: v for k, v in causal.state_dict().items() if k.startswith("backbone.")}
    assert info["loaded_tensors"] == len(backbone) == len(model.state_dict()) - 1
    assert info["new_tensors"] == ["score.weight"] and info["unused_checkpoint_keys"] == ["lm_head.weight"]
    for key, value in backbone.items():
        assert torch.equal(model.state_dict()["model." + key[len("backbone."):]], value), key
    # a backbone tensor missing from the checkpoint is an error naming it, not a random initialisation
    state = load_file(tmp_path / "ckpt" / "model.safetensors")
    state.pop("backbone.layers.1.mixer.in_proj.weight")
    save_file(state, tmp_path / "ckpt" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"lacks 1 backbone weight.*layers\.1\.mixer\.in_proj\.weight"):
        hf().load_pretrained(tmp_path / "ckpt", num_labels=2)
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    torch.save(state, tmp_path / "ckpt" / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pickled weights are refused"):
        hf().load_pretrained(tmp_path / "ckpt", num_labels=2)


def test_finetune_job_records_what_the_checkpoint_provided(tokenizer, tmp_path):
    from kernels.evaluation.job import load_finetuned
    from kernels.training.job import finetune_job

    _causal_checkpoint(tokenizer, tmp_path / "ckpt", MAMBA)
    tokenizer.save_pretrained(tmp_path / "ckpt")
    sentiment_frame(48).to_parquet(tmp_path / "train.parquet")
    hp = {"epochs": 1, "batch_size": 16, "lr": 3e-3, "weight_decay": 0.0, "warmup_ratio": 0.0, "max_grad_norm": 1.0,
          "max_length": 32, "bucket_batches": 2, "checkpoint_every": 50, "device": "cpu", "dtype": "float32",
          "gradient_checkpointing": True, "max_tokens_per_step": 128}
    finetune_job(train_path=tmp_path / "train.parquet", tokenizer_file=None, model_dir=tmp_path / "out", family="hf",
                 arch={}, pretrained=str(tmp_path / "ckpt"), revision=None, hp=hp, num_labels=2,
                 checkpoint_dir=tmp_path / "state", seed=0, progress=False)
    info = json.loads((tmp_path / "out" / "finetune_info.json").read_text())
    assert info["checkpoint"]["new_tensors"] == ["score.weight"]
    assert info["checkpoint"]["unused_checkpoint_keys"] == ["lm_head.weight"]
    assert info["implementation"]["library"] == "transformers"
    assert info["implementation"]["backbone_class"] == "MambaModel"
    assert "slow path" in info["implementation"]["path"]
    assert info["memory_plan"]["num_layers"] == 2 and info["memory_plan"]["layer"]["bytes_per_token"] > 0
    model, _ = load_finetuned("hf", tmp_path / "out")
    assert type(model.model).__name__ == "MambaModel"


def test_resumed_generic_fine_tune_ends_with_the_same_weights(tokenizer, tmp_path):
    from kernels.training import finetune

    frame = sentiment_frame(64)
    hp = finetune_hp(epochs=1, checkpoint_every=2, max_length=32)
    whole = tiny(tokenizer, MAMBA2)
    finetune(whole, tokenizer, frame, hp, model_dir=tmp_path / "a", checkpoint_dir=tmp_path / "ca", progress=False)
    split = tiny(tokenizer, MAMBA2)
    first = finetune(split, tokenizer, frame, hp, model_dir=tmp_path / "b", checkpoint_dir=tmp_path / "cb",
                     progress=False, stop_after_steps=2)
    assert not first.completed
    finetune(tiny(tokenizer, MAMBA2), tokenizer, frame, hp, model_dir=tmp_path / "b", checkpoint_dir=tmp_path / "cb",
             progress=False)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_activation_checkpointing_keeps_gradients_or_fails_clearly(tokenizer):
    from kernels.families.base import FamilyError
    from kernels.models.common import set_activation_checkpointing

    ids, mask = encode(tokenizer, [("the film is superb", None), ("the ending is awful in every scene", None)])
    labels = torch.tensor([1, 0])
    grads = []
    for checkpointing in (False, True):
        model = tiny(tokenizer).train()
        if checkpointing:
            hf().check_checkpointing(model)
            set_activation_checkpointing(model, True)
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-6) for n in grads[0])
    jetmoe = {"model_type": "jetmoe", "hidden_size": 32, "num_hidden_layers": 1, "num_key_value_heads": 2,
              "kv_channels": 8, "intermediate_size": 32, "num_local_experts": 2, "num_experts_per_tok": 1}
    model = tiny(tokenizer, jetmoe)
    assert not hf().supports_checkpointing(model)
    with pytest.raises(FamilyError, match="gradient_checkpointing is true, but JetMoeModel"):
        hf().check_checkpointing(model)


# --------------------------------------------------------------------------------------------- stages

def test_memory_planner_measures_generic_blocks(tokenizer):
    from kernels.training.memory import plan_memory, probe_layer

    two, four = tiny(tokenizer), tiny(tokenizer, {**MAMBA2, "num_hidden_layers": 4})
    layer = probe_layer(two, "float32")
    assert layer.bytes_per_token > 0 and layer.input_bytes_per_token == 32 * 4
    # one block's activations: the same whatever the depth (the last block is probed, not the stack)
    assert probe_layer(four, "float32").bytes_per_token == pytest.approx(layer.bytes_per_token, rel=0.01)
    plan = plan_memory(four, batch_size=8, longest=32, max_tokens_per_step=None, gradient_checkpointing=False,
                       dtype="float32", device="cpu")
    assert plan["num_layers"] == 4 and plan["activations_bytes"] > 4 * layer.bytes_per_token * 8 * 32


def test_white_box_gradients_reach_generic_backbones(tokenizer):
    from kernels.attacks.victim import ClassifierVictim

    victim = ClassifierVictim(tiny(tokenizer, MAMBA), tokenizer, max_length=32)
    tokens = victim.tokenize([("the film is superb", None)])
    (grad,) = victim.embedding_gradients(tokens, [0])
    assert grad.shape == (len(tokens[0].ids), 32) and abs(grad).sum() > 0
    assert victim.embedding_table().shape == (len(tokenizer), 32)


def _mamba2_state_bytes(arch, batch: int = 1) -> int:
    inner = arch["expand"] * arch["hidden_size"]
    conv = (inner + 2 * arch["n_groups"] * arch["state_size"]) * 4  # conv_kernel 4
    ssm = arch["num_heads"] * arch["head_dim"] * arch["state_size"]
    return batch * arch["num_hidden_layers"] * (conv + ssm) * 4  # float32


def test_decode_runs_through_the_models_cache_and_its_state_is_measured(tokenizer):
    from kernels.profiling.measure import build_model, run_point
    from kernels.profiling.settings import ProfileSettings
    from kernels.profiling.spec import ModelSpec

    spec = ModelSpec(family="hf", arch=MAMBA2, vocab_size=200)
    model = build_model(spec).eval()
    settings = ProfileSettings(warmup=0, min_repeats=1, max_repeats=1, decode_tokens=3, time_budget_s=0.0)
    row = run_point(model, spec, "decode", 2, 12, settings, torch.device("cpu"))
    assert row["state_mb"] * 2**20 == _mamba2_state_bytes(MAMBA2)  # per sequence
    assert row["flops_source"] == "FlopCounterMode" and "Mamba2Model, slow path" in row["implementation"]
    # the state continues the prompt: prefill + one-token steps give the full forward's hidden states
    ids = torch.randint(1, 200, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model.model(input_ids=ids).last_hidden_state
        hidden, state = hf().decode_forward(model.model, ids[:, :6], None, 0)
        for position in range(6, 9):
            step, state = hf().decode_forward(model.model, ids[:, position:position + 1], state, position)
            assert torch.allclose(step[:, -1], full[:, position], atol=1e-5), position


def test_flops_without_formula_are_counted(tokenizer):
    from kernels.profiling.measure import build_model, run_point
    from kernels.profiling.settings import ProfileSettings
    from kernels.profiling.spec import ModelSpec

    arch = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 4}
    spec = ModelSpec(family="hf", arch=arch, vocab_size=200)
    model = build_model(spec)
    settings = ProfileSettings(warmup=0, min_repeats=1, max_repeats=1, decode_tokens=4, time_budget_s=0.0)
    decode = run_point(model, spec, "decode", 1, 10, settings, torch.device("cpu"))
    # Llama is Transformer++: its count equals the analytic formula (context of each decoded token: the prompt
    # and the tokens so far), plus the LM head the decode runs instead of the classification head
    projections = 2 * 32 * 32 * 4 + 3 * 2 * 32 * 64
    attention = 2 * 2 * 32 * (10 + (4 + 1) / 2)
    assert decode["flops_per_token"] == pytest.approx(2 * (projections + attention) + 2 * 32 * 200)
    train = run_point(model, spec, "train", 1, 10, settings, torch.device("cpu"))
    assert train["flops_source"] == "FlopCounterMode" and train["flops_per_token"] > 2.9 * 2 * projections


@pytest.mark.parametrize("family_name", ["transformer_pp", "gla", "mmfree"])
def test_flop_counter_equals_the_native_formulas(family_name):
    """The formulas of the native families against torch's FlopCounterMode on one decode step of the
    backbone (every matmul of the step; the formula's classification head is the only term it does not run)."""
    from kernels.families import family
    from kernels.models.common import decode_state_of
    from kernels.profiling.counting import flop_counter

    arch = {"hidden_size": 32, "num_hidden_layers": 2, "hidden_ratio": 4}
    if family_name != "mmfree":
        arch["num_heads"] = 2
    model = family(family_name).build(arch, vocab_size=64, num_labels=2, pad_token_id=0, seed=0).eval()
    prompt = torch.randint(1, 64, (1, 7))
    with torch.no_grad():
        state = family(family_name).initial_decode_state(model.model, 8)
        state = decode_state_of(model.model(prompt, past_state=state, use_cache=True))
        counter = flop_counter()
        with counter:
            model.model(torch.randint(1, 64, (1, 1)), past_state=state, use_cache=True)
    head = 2 * 32 * 2
    formula = family(family_name).forward_flops_per_token(model.config, context=8)  # 7 cached + itself
    assert counter.get_total_flops() == formula - head
