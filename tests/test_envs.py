"""The pinned conda environments (one per rule group) agree with pyproject.toml's requirements."""

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from workflow_helpers import REPO

ENVS = sorted((REPO / "envs").glob("*.yaml"))


def _project_requirements() -> dict[str, Requirement]:
    """The package's runtime requirements, the GPU path's (the `gpu` extra) included."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["gpu"]]
    return {canonicalize_name(r.name): r for r in reqs}


def _pins(env_file) -> dict[str, str]:
    spec = yaml.safe_load(env_file.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {}
    for line in pip:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line.strip())
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_every_rule_group_has_a_pinned_environment():
    assert {p.stem for p in ENVS} == {"data", "torch", "report"}
    for env in ENVS:
        assert _pins(env), f"{env.name} pins nothing"
    for rule_file in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"\.\./envs/(\w+)\.yaml"', rule_file.read_text()):
            assert (REPO / "envs" / f"{env}.yaml").exists(), (rule_file.name, env)


def test_pins_satisfy_pyproject():
    requirements = _project_requirements()
    for env in ENVS:
        for name, version in _pins(env).items():
            if name in requirements:
                assert requirements[name].specifier.contains(version, prereleases=True), (env.name, name, version)


def test_torch_environment_offers_fla_for_gpu_runs():
    """Jobs run with --software-deployment-method conda must be able to use fla's kernels on GPU nodes:
    the runtime side of fla (fla-core and einops, which its ops import; the environment's own torch 2.13
    with the triton it is built against), not fla's layers, which only the GPU check compares with. The
    `gpu` extra never names triton: on a node the CUDA torch brings its own."""
    pins = _pins(REPO / "envs" / "torch.yaml")
    gpu = {canonicalize_name(Requirement(r).name)
           for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]}
    assert gpu == {"fla-core", "einops", "flash-linear-attention"}
    assert {"fla-core", "einops", "triton", "torch"} <= set(pins)
    assert "flash-linear-attention" not in pins


def test_every_environment_can_import_the_kernels_package():
    """Every rule group's script imports the kernels package. The model groups and the data group's
    tokenizer job need torch and transformers (``kernels.models``, ``kernels.tokenization``); the report
    group no longer imports them (``import kernels`` is light) but keeps the same pinned set, so that any
    kernels module a future report needs imports there too."""
    for env in ENVS:
        assert {"torch", "transformers", "safetensors"} <= set(_pins(env)), env.name
