"""The README gives exactly two commands for a fresh machine, and CI runs the second one verbatim."""

import re

from workflow_helpers import REPO


def _quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_readme_has_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2
    setup_and_run, setup_and_test = commands
    assert "pip install torch==2.13.0" in setup_and_run and setup_and_run.endswith("snakemake --cores 2 report")
    assert "pip install" in setup_and_test and "pytest" in setup_and_test


def test_ci_runs_the_readme_test_command():
    test_command = _quick_start_commands()[1]
    ci = (REPO / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()


def test_ci_also_runs_the_heavy_tests_the_default_run_leaves_out():
    # The default run deselects `heavy` (pyproject addopts); CI must still run those whole-workflow checks.
    import tomllib

    addopts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert "not heavy" in addopts
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    readme_test = ci_lines.index(_quick_start_commands()[1])
    assert "python -m pytest -m heavy" in ci_lines[readme_test + 1:]
    heavy_tests = [p.name for p in (REPO / "tests").glob("test_*.py") if re.search(r"^@pytest\.mark\.heavy$", p.read_text(), re.M)]
    assert sorted(heavy_tests) == ["test_gpu_check.py", "test_paper_rehearsal.py", "test_slurm.py",
                                   "test_zoo_rehearsal.py"]
