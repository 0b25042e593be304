"""``models.<name>.pretrained`` is checked when the workflow starts, before any job (so before Snakemake removes
the previous outputs of a job that would read it): an existing directory with config.json and complete
safetensors weights, or a hub id of the valid form; each error names the key and the file. In the jobs, hub
look-ups fail fast when the hub cannot answer, and a corrupt checkpoint file is named."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest
import yaml

from workflow_helpers import REPO, TINY, run_python, run_snakemake

KEY = "models.gla.pretrained"


def write_safetensors(path, tensors: dict[str, int]) -> None:
    """A valid safetensors file of float32 vectors {name: length}, without torch."""
    header, offset = {}, 0
    for name, length in tensors.items():
        header[name] = {"dtype": "F32", "shape": [length], "data_offsets": [offset, offset + 4 * length]}
        offset += 4 * length
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def checkpoint(directory, *, truncate: bool = False):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"model_type": "gla"}))
    write_safetensors(directory / "model.safetensors", {"a": 16, "b": 8})
    if truncate:  # a copy or a download that stopped early
        data = (directory / "model.safetensors").read_bytes()
        (directory / "model.safetensors").write_bytes(data[:-10])
    return directory


def test_a_complete_checkpoint_directory_and_a_hub_id_pass(tmp_path):
    from kernels.pretrained import pretrained_errors

    assert pretrained_errors(None, KEY) == []
    assert pretrained_errors(str(checkpoint(tmp_path / "ckpt")), KEY) == []
    assert pretrained_errors("fla-hub/gla-1.3B-100B", KEY, base=tmp_path) == []  # no network needed
    assert pretrained_errors("gpt2", KEY, base=tmp_path) == []


def test_a_missing_directory_is_named_with_the_key_not_taken_for_a_hub_id(tmp_path):
    from kernels.pretrained import pretrained_errors

    missing = tmp_path / "nowhere" / "gla"
    (error,) = pretrained_errors(str(missing), KEY)
    assert error.startswith(f"{KEY}: directory {missing} does not exist")
    (error,) = pretrained_errors("rehearsal/checkpoints/gla", KEY, base=tmp_path)
    assert KEY in error and str(tmp_path / "rehearsal/checkpoints/gla") in error and "not a hub id" in error
    (error,) = pretrained_errors("./ckpt", KEY, base=tmp_path)
    assert "does not exist" in error


def test_a_malformed_hub_id_is_an_error(tmp_path):
    from kernels.pretrained import pretrained_errors

    (error,) = pretrained_errors("my model!", KEY, base=tmp_path)
    assert KEY in error and "neither an existing directory" in error and "hub id" in error
    assert pretrained_errors("a--b/c", KEY, base=tmp_path)


def test_checkpoint_problems_name_the_file(tmp_path):
    from kernels.pretrained import checkpoint_dir_problems, pretrained_errors

    empty = tmp_path / "empty"
    empty.mkdir()
    problems = checkpoint_dir_problems(empty)
    assert any(str(empty / "config.json") in p and "missing" in p for p in problems)
    assert any("no model.safetensors" in p for p in problems)
    truncated = checkpoint(tmp_path / "truncated", truncate=True)
    (error,) = pretrained_errors(str(truncated), KEY)
    assert error.startswith(f"{KEY}: {truncated / 'model.safetensors'}: not a complete safetensors file")
    assert "truncated" in error
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"model_type": "gla"}))
    (pickled / "pytorch_model.bin").write_bytes(b"PK")
    assert any("refused unless allow_pickle" in p for p in checkpoint_dir_problems(pickled))
    assert checkpoint_dir_problems(pickled, allow_pickle=True) == []
    sharded = checkpoint(tmp_path / "sharded")
    (sharded / "model.safetensors").unlink()
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "part-1.safetensors"}}))
    assert any("lists shard part-1.safetensors, which is missing" in p for p in checkpoint_dir_problems(sharded))


def test_safetensors_header_check(tmp_path):
    from kernels.pretrained import safetensors_problem

    good = tmp_path / "good.safetensors"
    write_safetensors(good, {"w": 4})
    assert safetensors_problem(good) is None
    (tmp_path / "short.safetensors").write_bytes(b"\x01\x02")
    assert "too short" in safetensors_problem(tmp_path / "short.safetensors")
    (tmp_path / "huge.safetensors").write_bytes(struct.pack("<Q", 10**9) + b"{}")
    assert "truncated" in safetensors_problem(tmp_path / "huge.safetensors")
    longer = tmp_path / "longer.safetensors"
    longer.write_bytes(good.read_bytes() + b"xx")
    assert "trailing bytes" in safetensors_problem(longer)


def overlay(tmp_path, pretrained: str):
    path = tmp_path / "pretrained.yaml"
    path.write_text(yaml.safe_dump({"models": {"gla": {"pretrained": pretrained}}}))
    return path


@pytest.mark.parametrize("kind", ["missing", "truncated"])
def test_a_bad_pretrained_stops_the_workflow_before_any_job_and_loses_no_output(tmp_path, kind):
    source = tmp_path / "ckpt"
    if kind == "truncated":
        checkpoint(source, truncate=True)
    workdir = tmp_path / "run"
    previous = workdir / "results/models/gla/rte/seed0/config.json"  # an output of a job that reads it
    previous.parent.mkdir(parents=True)
    previous.write_text("{}")
    proc = run_snakemake(workdir, "--cores", "1", str(previous.relative_to(workdir)), "--configfile", str(TINY),
                         str(overlay(tmp_path, str(source))), check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{KEY}:" in out
    assert (str(source) if kind == "missing" else str(source / "model.safetensors")) in out
    assert "rule " not in out.split("invalid settings", 1)[0]  # no job was started
    assert previous.read_text() == "{}"


def test_a_corrupt_checkpoint_file_is_named_when_it_is_read(tmp_path):
    from kernels.models.common import CheckpointError, read_state_dict

    source = checkpoint(tmp_path / "ckpt", truncate=True)
    with pytest.raises(CheckpointError, match=rf"{source / 'model.safetensors'}: not a complete safetensors"):
        read_state_dict([source / "model.safetensors"], pickled=False)


def test_a_refused_pickle_is_not_advised_to_be_loaded_anyway(tmp_path):
    import torch

    from kernels.models.common import CheckpointError, read_state_dict

    path = tmp_path / "pytorch_model.bin"
    torch.save({"weights": torch.zeros(2), "code": threading.Lock}, path)  # not only tensors
    with pytest.raises(CheckpointError) as caught:
        read_state_dict([path], pickled=True)
    message = str(caught.value)
    assert str(path) in message and "safetensors" in message
    assert "weights_only=False" not in message and "can still be loaded" not in message


class SilentServer:
    """A TCP server that accepts connections and never answers (a hub behind a dropping firewall)."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _accept(self):
        while True:
            try:
                self.connections.append(self.socket.accept()[0])
            except OSError:
                return

    def close(self):
        self.socket.close()
        for connection in self.connections:
            connection.close()


LOOKUP = """
from kernels.pretrained import PretrainedSourceError, local_checkpoint_dir
try:
    local_checkpoint_dir("someone/some-model")
except PretrainedSourceError as err:
    print("ERROR", err)
"""


def test_a_hub_lookup_that_gets_no_answer_fails_after_one_request(tmp_path):
    import os

    server = SilentServer()
    try:
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_ETAG_TIMEOUT": "1",
               "HF_HUB_OFFLINE": "0"}
        out = run_python(LOOKUP, env=env, timeout=120)
        assert "ERROR 'someone/some-model'" in out and "the hub did not answer" in out
        time.sleep(0.2)
        assert len(server.connections) == 1  # one request, no retries
        out = run_python(LOOKUP, env={**env, "HF_HUB_OFFLINE": "1"}, timeout=120)
        assert "not in the local hub cache, and HF_HUB_OFFLINE is set" in out
        assert len(server.connections) == 1  # offline: no request at all
    finally:
        server.close()
