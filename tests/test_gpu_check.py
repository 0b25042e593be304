"""benchmarks/gpu_check.sh on what an offline GPU node has: torch, triton, transformers, pytest, pandas and
the README's wheel set, nothing of the workflow's own dependencies.

Without a GPU here, the check must still collect every ``gpu`` test, skip the CUDA parts with their reason
and end with its JSON line. The heavy test builds exactly that environment (a fresh venv; torch's CPU wheel
and the other packages from the local pip cache, the wheel set with the README's own ``pip download``
line) and runs the check in it; the fast test proves the collection with the workflow's libraries blocked.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workflow_helpers import REPO

# The workflow's libraries a GPU node typically lacks (and test modules must not need at import).
WORKFLOW_ONLY = ("altair", "datasets", "pyarrow", "scipy", "snakemake", "vl_convert", "jsonschema")
NODE_PACKAGES = ("triton", "transformers", "pytest", "pandas")


# The line benchmarks/gpu_check.sh greps for: the marker applied (decorator or module-level pytestmark)
GPU_MARK_LINE = re.compile(r"^\s*(@|pytestmark\s*=\s*\[?\s*)?pytest\.mark\.gpu\b", re.MULTILINE)


def gpu_test_files() -> list[Path]:
    """The files benchmarks/gpu_check.sh hands to pytest (the same pattern)."""
    return sorted(p for p in (REPO / "tests").glob("test_*.py") if GPU_MARK_LINE.search(p.read_text()))


def collect_gpu_tests(python: str, files: list[Path], blocked: tuple[str, ...] = (), env=None) -> list[str]:
    """Node ids of the ``gpu`` tests pytest collects from ``files``, with ``blocked`` modules unimportable."""
    code = textwrap.dedent(f"""
        import sys
        for name in {list(blocked)!r}:
            sys.modules[name] = None  # `import name` raises ImportError, as where it is not installed
        import pytest
        sys.exit(pytest.main(["--collect-only", "-q", "-m", "gpu", "-p", "no:cacheprovider", *sys.argv[1:]]))
    """)
    done = subprocess.run([python, "-c", code, *map(str, files)], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_gpu_tests_collect_without_the_workflow_s_libraries():
    files = gpu_test_files()
    assert {p.name for p in files} >= {"test_ops_gla.py", "test_ops_hgrn.py", "test_ops_fla_cuda.py"}
    ids = collect_gpu_tests(sys.executable, files, blocked=WORKFLOW_ONLY)
    assert len(ids) >= 6 and {i.split("::")[0] for i in ids} == {f"tests/{p.name}" for p in files}


# ----------------------------------------------------------------------------------- the offline node

def readme_wheel_recipe() -> tuple[str, list[str]]:
    """The README's ``pip download`` line for the node's wheels, and the requirements it names."""
    text = (REPO / "README.md").read_text()
    line = next(line.strip() for line in text.splitlines() if line.strip().startswith("pip download "))
    return line, [word for word in shlex.split(line) if "==" in word]


def test_readme_wheel_set_is_the_gpu_extra():
    """The wheels the README has a user carry to the node are exactly what the `gpu` extra requires,
    pinned, and never a triton (the node's torch brings the triton it was built against)."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    _, wheels = readme_wheel_recipe()
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    names = {canonicalize_name(Requirement(r).name) for r in extra}
    assert {canonicalize_name(w.split("==")[0]) for w in wheels} == names
    assert "triton" not in names
    for wheel in wheels:  # each pin satisfies the extra
        name, pinned = wheel.split("==")
        requirement = next(Requirement(r) for r in extra if canonicalize_name(Requirement(r).name) == canonicalize_name(name))
        assert requirement.specifier.contains(pinned), wheel


def _node_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh venv with torch's CPU wheel, the node's other packages (the versions installed here, from the
    local pip cache) and the README's wheels, installed offline as the README says."""
    venv = tmp_path / "node-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in NODE_PACKAGES]
    # --no-compile: bytecode is written on first import instead (most of torch is never imported)
    subprocess.run([*pip, "install", "--no-compile", "torch==2.13.0", *pins], check=True, timeout=1200)
    line, _ = readme_wheel_recipe()
    wheels = tmp_path / "wheels"
    download = shlex.split(line.replace("-d gpu-wheels", f"-d {wheels}"))
    assert download[:2] == ["pip", "download"] and str(wheels) in download
    subprocess.run([*pip, *download[1:]], check=True, timeout=600)
    subprocess.run([*pip, "install", "--no-index", "--no-deps", "--no-compile", *map(str, wheels.glob("*.whl"))],
                   check=True, timeout=600)
    return venv, wheels


@pytest.mark.heavy
def test_gpu_check_runs_to_its_json_line_with_only_the_node_s_packages(tmp_path):
    venv, wheels = _node_venv(tmp_path)
    python = str(venv / "bin" / "python")
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    wheel_bytes = sum(p.stat().st_size for p in wheels.glob("*.whl"))
    print(f"wheel set: {sorted(p.name for p in wheels.glob('*.whl'))}, {wheel_bytes / 1e6:.2f} MB")
    # the environment really lacks the workflow's libraries
    probe = "import importlib.util as u; print([m for m in %r if u.find_spec(m)])" % (WORKFLOW_ONLY,)
    assert subprocess.run([python, "-c", probe], capture_output=True, text=True, env=env,
                          check=True).stdout.strip() == "[]"
    expected = collect_gpu_tests(sys.executable, gpu_test_files())  # here, with everything installed

    work = tmp_path / "check"
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(work)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    print(done.stdout[-4000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"gpu_check on CPU in the node's package set: {result['wall_s']} s")
    assert done.returncode == 1 and result["ok"] is False and result["cuda"] is False  # nothing validated
    assert result["finished"] and result["reached"] == "gpu_step_cpu_smoke"
    steps = result["steps"]
    env_info = json.loads((work / "env.json").read_text())
    assert env_info["fla_ops_import_error"] is None and env_info["fla_layers_import_error"] is None
    assert set(env_info["rehearsal_missing"]) >= {"snakemake", "datasets", "pyarrow", "scipy", "altair"}
    assert env_info["versions"]["torch"] == "2.13.0+cpu" and env_info["versions"]["snakemake"] is None
    # every gpu test collected (as many as with everything installed), each skipped for lack of CUDA
    tests = steps["gpu_tests"]
    assert tests["status"] == "ok" and tests["collected"] == len(expected) >= 6
    assert tests["skipped"] == tests["collected"] and tests["skip_reasons"] == ["needs CUDA"]
    for name in ("gpu_step", "fla_layers", "rehearsal"):
        assert steps[name] == {"status": "skipped", "seconds": 0, "reason": "CUDA is not available"}
    # the 1.3B step's script itself runs here, at tiny sizes on the CPU
    smoke = steps["gpu_step_cpu_smoke"]
    assert smoke["status"] == "ok" and smoke["all_ok"] and set(smoke["families"]) == {"gla"}
    # the layer comparison's script imports here too (fla's layers from the wheel set)
    layers = ("import importlib.util as u, torch; s = u.spec_from_file_location('b', %r); m = u.module_from_spec(s); "
              "s.loader.exec_module(m); ours, theirs = m.gla_layers(64, torch.device('cpu'), torch.float32); "
              "print(ours.state_dict().keys() == theirs.state_dict().keys())"
              % str(REPO / "benchmarks" / "bench_fla_layers.py"))
    assert subprocess.run([python, "-c", layers], capture_output=True, text=True, env=env, cwd=REPO,
                          check=True).stdout.strip().splitlines()[-1] == "True"


def test_check_script_keeps_its_time_budget_and_json_line():
    """What the GPU node relies on, in the script's text: one budget under 9 minutes, a limit per step, the
    JSON line from an EXIT trap, autotuning bounded by default, the rehearsal optional."""
    script = (REPO / "benchmarks" / "gpu_check.sh").read_text()
    budget = int(re.search(r"GPU_CHECK_BUDGET_S:-(\d+)", script).group(1))
    # a step's limit never exceeds what is left of the budget; timeout's --kill-after and the summary add
    # at most ~12 s after it
    assert budget + 20 <= 9 * 60
    assert f"grep -l -E '{GPU_MARK_LINE.pattern}'" in script  # the files this test module collects
    assert "trap summary EXIT" in script and "timeout --kill-after" in script
    assert re.search(r"KERNELS_AUTOTUNE_CONFIGS:-1\b", script)
    assert "REHEARSAL_READY" in script and "TRITON_F32_DEFAULT=ieee" in script


def test_check_ends_with_its_json_line_when_the_budget_runs_out(tmp_path):
    """However little time there is, every step is accounted for (here: skipped, naming the budget) and
    the last line is the JSON object."""
    env = {**os.environ, "GPU_CHECK_BUDGET_S": "12"}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path / "check")], env=env,
                          capture_output=True, text=True, timeout=300)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 1 and result["ok"] is False and result["finished"] and result["reached"] is None
    steps = result["steps"]
    for name in ("env", "gpu_tests"):
        assert steps[name]["status"] == "skipped" and "of the 12 s budget left" in steps[name]["reason"]
    # without env.json the check does not know about CUDA: the CUDA steps are skipped for that reason
    assert {steps[name]["status"] for name in ("gpu_step", "fla_layers", "rehearsal")} == {"skipped"}


def _summary(work: Path) -> dict:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check_summary.py"), str(work), "0"],
                          capture_output=True, text=True, timeout=60)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == (0 if result["ok"] else 1)
    return result


def test_summary_calls_the_gpu_path_validated_only_when_every_required_step_passed(tmp_path):
    """The verdict of a CUDA run, from what its steps leave behind (written here as a node would)."""
    def record(name, status, **extra):
        with open(tmp_path / "steps.jsonl", "a") as steps:
            steps.write(json.dumps({"name": name, "status": status, "seconds": 1, **extra}) + "\n")

    (tmp_path / "env.json").write_text(json.dumps({"cuda": True, "kernels": "fla", "device": "H200"}))
    (tmp_path / "gpu_tests.xml").write_text(
        '<testsuites><testsuite><testcase name="a"/><testcase name="b"/></testsuite></testsuites>')
    run = {"status": "ok", "losses_finite": True, "peak_gib": 40.0, "planner_gib": 43.2}
    (tmp_path / "gpu_step.log").write_text("noise\n" + json.dumps({"families": {"gla": run}, "all_ok": True,
                                                                   "complete": True}) + "\n")
    (tmp_path / "fla_layers.log").write_text(json.dumps({"gla_layer_max_abs_diff_vs_fla": 0.01}) + "\n")
    for name in ("env", "gpu_tests", "gpu_step", "fla_layers"):
        record(name, "ok")
    record("rehearsal", "skipped", reason="optional")
    result = _summary(tmp_path)
    assert result["ok"] and result["reached"] == "fla_layers"
    assert result["steps"]["gpu_tests"]["passed"] == 2 and result["steps"]["gpu_step"]["families"]["gla"] == run
    assert result["steps"]["fla_layers"]["gla_layer_max_abs_diff_vs_fla"] == 0.01
    # a failed gpu test, or a step cut by its time limit, and the path is not validated
    (tmp_path / "gpu_tests.xml").write_text(
        '<testsuites><testsuite><testcase name="a"><failure message="x"/></testcase></testsuite></testsuites>')
    assert _summary(tmp_path)["ok"] is False
    (tmp_path / "gpu_tests.xml").write_text('<testsuites><testsuite><testcase name="a"/></testsuite></testsuites>')
    record("fla_layers", "timeout", rc=124)
    result = _summary(tmp_path)
    assert result["ok"] is False and result["steps"]["fla_layers"]["status"] == "timeout"
