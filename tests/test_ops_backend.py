"""Dispatch between fla's triton kernels and the pure-PyTorch kernels (kernels.ops.backend)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import pytest
import torch

from kernels.ops import backend
from kernels.ops.gla import chunk_gla, fused_recurrent_gla, naive_recurrent_gla
from kernels.ops.hgrn import chunk_hgrn, fused_recurrent_hgrn, naive_recurrent_hgrn


@pytest.fixture(autouse=True)
def clean_backend_state(monkeypatch):
    monkeypatch.delenv(backend.FORCE_TORCH_ENV, raising=False)
    backend.set_force_torch(None)
    yield
    backend.set_force_torch(None)


def test_environment_variable_forces_torch(monkeypatch):
    assert backend.torch_forced() is False
    for word in ("1", "true", "YES", " on "):
        monkeypatch.setenv(backend.FORCE_TORCH_ENV, word)
        assert backend.torch_forced() is True
    for word in ("0", "false", "no", ""):
        monkeypatch.setenv(backend.FORCE_TORCH_ENV, word)
        assert backend.torch_forced() is False


def test_unreadable_environment_value_is_an_error(monkeypatch):
    monkeypatch.setenv(backend.FORCE_TORCH_ENV, "sometimes")
    with pytest.raises(ValueError, match="KERNELS_FORCE_TORCH"):
        backend.torch_forced()


def test_set_force_torch_wins_over_environment(monkeypatch):
    monkeypatch.setenv(backend.FORCE_TORCH_ENV, "1")
    backend.set_force_torch(False)
    assert backend.torch_forced() is False
    monkeypatch.setenv(backend.FORCE_TORCH_ENV, "0")
    backend.set_force_torch(True)
    assert backend.torch_forced() is True
    backend.set_force_torch(None)  # back to the environment
    assert backend.torch_forced() is False


def test_set_force_torch_rejects_non_bool():
    with pytest.raises(TypeError, match="set_force_torch"):
        backend.set_force_torch("yes")


def test_fla_available_reflects_importability():
    if importlib.util.find_spec("fla") is None:
        assert backend.fla_available() is False


def test_cpu_tensors_never_use_fla(monkeypatch):
    monkeypatch.setattr(backend, "fla_available", lambda: True)
    x = torch.zeros(2, 3)
    assert backend.use_fla(x, None) is False
    assert backend.use_fla() is False
    assert backend.use_fla(None) is False


# --- The fla code path cannot run here (no CUDA, no fla). These tests stand in fla 0.6's public
# functions, with their real parameter lists, to check that our wrappers call them correctly.


def _fake_fla(calls):
    def chunk_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                  state_v_first=False, cu_seqlens=None, cu_seqlens_cpu=None):
        assert initial_state is None or initial_state.dtype == torch.float32, "fla asserts an fp32 state"
        calls.append(("chunk_gla", scale))
        o, s = naive_recurrent_gla(q, k, v, g, scale, initial_state, output_final_state)
        return o, s

    def fused_recurrent_gla(q, k, v, gk=None, gv=None, scale=None, initial_state=None,
                            output_final_state=False, reverse=False, state_v_first=False,
                            cu_seqlens=None, **kwargs):
        assert not kwargs
        calls.append(("fused_recurrent_gla", scale))
        return naive_recurrent_gla(q, k, v, gk, scale, initial_state, output_final_state)

    def chunk_hgrn(x, g, initial_state=None, output_final_state=False):
        calls.append(("chunk_hgrn", None))
        return naive_recurrent_hgrn(x, g, initial_state, output_final_state)

    def fused_recurrent_hgrn(x, g, initial_state=None, output_final_state=False, cu_seqlens=None):
        calls.append(("fused_recurrent_hgrn", None))
        o, s = naive_recurrent_hgrn(x, g, initial_state, output_final_state)
        # fla 0.6 allocates the final state with x.new_empty: it comes back in x's dtype
        return o, (s.to(x.dtype) if s is not None else None)

    fla = types.ModuleType("fla")
    ops = types.ModuleType("fla.ops")
    gla = types.ModuleType("fla.ops.gla")
    hgrn = types.ModuleType("fla.ops.hgrn")
    gla.chunk_gla, gla.fused_recurrent_gla = chunk_gla, fused_recurrent_gla
    hgrn.chunk_hgrn, hgrn.fused_recurrent_hgrn = chunk_hgrn, fused_recurrent_hgrn
    fla.ops, ops.gla, ops.hgrn = ops, gla, hgrn
    return {"fla": fla, "fla.ops": ops, "fla.ops.gla": gla, "fla.ops.hgrn": hgrn}


@pytest.fixture
def fake_fla(monkeypatch):
    calls = []
    for name, module in _fake_fla(calls).items():
        monkeypatch.setitem(sys.modules, name, module)
    for module_name in ("kernels.ops.gla.chunk", "kernels.ops.gla.fused_recurrent",
                        "kernels.ops.hgrn.chunk", "kernels.ops.hgrn.fused_recurrent"):
        monkeypatch.setattr(importlib.import_module(module_name), "use_fla", lambda *tensors: True)
    return calls


def test_gla_wrappers_call_fla_with_its_signature(fake_fla):
    gen = torch.Generator().manual_seed(0)
    q, k, g = (torch.randn(1, 9, 2, 4, generator=gen) for _ in range(3))
    g = torch.nn.functional.logsigmoid(g)
    v = torch.randn(1, 9, 2, 5, generator=gen)
    h0 = torch.randn(1, 2, 4, 5, generator=gen, dtype=torch.float64)  # converted to fp32 for fla
    expected, expected_state = naive_recurrent_gla(q, k, v, g, 0.3, h0.float(), True)
    for fn in (chunk_gla, fused_recurrent_gla):
        o, s = fn(q, k, v, g, scale=0.3, initial_state=h0, output_final_state=True)
        torch.testing.assert_close(o, expected)
        torch.testing.assert_close(s, expected_state)
    o, _ = chunk_gla(q, k, v, g)  # default scale resolved before dispatch
    assert [c[0] for c in fake_fla] == ["chunk_gla", "fused_recurrent_gla", "chunk_gla"]
    assert fake_fla[0][1] == 0.3 and fake_fla[-1][1] == pytest.approx(4**-0.5)


def test_hgrn_wrappers_call_fla_and_return_fp32_state(fake_fla):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 3, generator=gen).to(torch.bfloat16)
    g = torch.nn.functional.logsigmoid(torch.randn(2, 6, 3, generator=gen)).to(torch.bfloat16)
    for fn in (chunk_hgrn, fused_recurrent_hgrn):
        o, s = fn(x, g, output_final_state=True)
        assert o.dtype == torch.bfloat16
        assert s.dtype == torch.float32
    assert [c[0] for c in fake_fla] == ["chunk_hgrn", "fused_recurrent_hgrn"]


def test_forcing_torch_skips_fla_even_when_it_would_be_used(monkeypatch):
    """use_fla is the single switch: with CUDA-looking tensors and fla present, forcing still wins."""
    monkeypatch.setattr(backend, "fla_available", lambda: True)

    class CudaLike:
        is_cuda = True

    assert backend.use_fla(CudaLike(), CudaLike()) is True
    backend.set_force_torch(True)
    assert backend.use_fla(CudaLike(), CudaLike()) is False
    backend.set_force_torch(None)
    monkeypatch.setenv(backend.FORCE_TORCH_ENV, "1")
    assert backend.use_fla(CudaLike()) is False


# --- evidence that fla's kernels ran: the adapters count their calls ----------------------------------

def test_adapters_count_every_fla_call_and_the_torch_path_none(fake_fla, monkeypatch):
    for module_name in ("kernels.ops.gla.chunk", "kernels.ops.gla.fused_recurrent",
                        "kernels.ops.hgrn.chunk", "kernels.ops.hgrn.fused_recurrent"):
        monkeypatch.setattr(importlib.import_module(module_name), "use_fla",
                            lambda *tensors: not backend.torch_forced())  # as on CUDA: forcing still wins
    gen = torch.Generator().manual_seed(2)
    q, k, g = (torch.randn(1, 5, 2, 4, generator=gen) for _ in range(3))
    v = torch.randn(1, 5, 2, 3, generator=gen)
    x, gx = torch.randn(1, 5, 6, generator=gen), torch.randn(1, 5, 6, generator=gen)
    before = backend.fla_kernel_calls()
    chunk_gla(q, k, v, g)
    chunk_gla(q, k, v, g)
    fused_recurrent_gla(q, k, v, g)
    chunk_hgrn(x, gx)
    fused_recurrent_hgrn(x, gx)
    backend.set_force_torch(True)  # the same tensors on the pure-PyTorch ops: fla's kernels do not run
    chunk_gla(q, k, v, g)
    chunk_hgrn(x, gx)
    backend.set_force_torch(None)
    calls = backend.fla_calls_since(before)
    assert calls == {"chunk_gla": 2, "fused_recurrent_gla": 1, "chunk_hgrn": 1, "fused_recurrent_hgrn": 1}
    assert [c[0] for c in fake_fla] == ["chunk_gla", "chunk_gla", "fused_recurrent_gla", "chunk_hgrn",
                                        "fused_recurrent_hgrn"]
    assert backend.fla_call_record(before) == {"fla_kernel_calls": 5, "fla_kernel_calls_by_op": calls}


def test_unknown_fla_op_is_not_counted():
    with pytest.raises(ValueError, match="unknown fla op 'chunk_rwkv'"):
        backend.count_fla_call("chunk_rwkv")


def test_finetune_info_records_the_fla_calls_of_training(fake_fla, tmp_path):
    """finetune_info.json's provenance says how often fla's kernels ran during the job's training steps
    (here the stand-in fla of ``fake_fla``, called through the real adapters from a GLA classifier)."""
    import json

    from test_training_support import finetune_hp, make_tokenizer, sentiment_frame

    from kernels.models import build_classifier
    from kernels.training.loop import finetune

    tokenizer = make_tokenizer()
    model = build_classifier("gla", {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2},
                             vocab_size=len(tokenizer), num_labels=2, pad_token_id=tokenizer.pad_token_id, seed=0)
    info = {"provenance": backend.kernel_provenance("cpu")}
    result = finetune(model, tokenizer, sentiment_frame(16), finetune_hp(epochs=1, batch_size=8),
                      model_dir=tmp_path / "model", checkpoint_dir=tmp_path / "ckpt", progress=False, info=info)
    recorded = json.loads((tmp_path / "model" / "finetune_info.json").read_text())["provenance"]
    chunk_calls = sum(1 for name, _ in fake_fla if name == "chunk_gla")
    assert chunk_calls >= 2 * result.steps  # two layers per forward, at least one forward per step
    assert recorded["fla_kernel_calls"] == chunk_calls
    assert recorded["fla_kernel_calls_by_op"] == {"chunk_gla": chunk_calls, "fused_recurrent_gla": 0,
                                                  "chunk_hgrn": 0, "fused_recurrent_hgrn": 0}
    assert recorded["kernels"] == "torch"  # what kernel_provenance says for a CPU device, unchanged


# --- code_version outside a git checkout ----------------------------------------------------------------

def test_code_version_outside_a_git_checkout_is_a_hash_of_the_sources(tmp_path):
    """An exported copy of the package (no .git, e.g. on a cluster node) still names its code."""
    import shutil
    import subprocess

    copy = tmp_path / "export"
    shutil.copytree(backend.PACKAGE_DIR, copy / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    probe = "from kernels.ops.backend import code_version; print(code_version())"

    def version_of_copy() -> str:
        done = subprocess.run([sys.executable, "-c", probe], cwd=copy, capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy)}, check=True)
        return done.stdout.strip()

    exported = version_of_copy()
    assert exported == "src-" + backend.package_source_hash()[:12]  # same sources, same version
    (copy / "kernels" / "ops" / "fastmath.py").write_text("# edited\n", encoding="utf-8")
    edited = version_of_copy()
    assert edited.startswith("src-") and edited != exported
