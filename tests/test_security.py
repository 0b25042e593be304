"""Security rules, checked over the whole code base: nothing downloaded is ever executed, weights are never
unpickled without weights_only, and no rule hands config or data values to a shell."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON_SOURCES = sorted([*REPO.glob("kernels/**/*.py"), *REPO.glob("workflow_scripts/*.py"),
                         *REPO.glob("benchmarks/*.py")])
RULE_FILES = sorted([REPO / "Snakefile", *REPO.glob("rules/*.smk")])


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _keyword(call, name):
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def test_trust_remote_code_is_never_enabled():
    for path in PYTHON_SOURCES:
        for call in _calls(ast.parse(path.read_text())):
            value = _keyword(call, "trust_remote_code")
            if value is not None:
                assert isinstance(value, ast.Constant) and value.value is False, f"{path}:{call.lineno}"


def test_torch_load_always_uses_weights_only():
    for path in PYTHON_SOURCES:
        for call in _calls(ast.parse(path.read_text())):
            func = call.func
            if isinstance(func, ast.Attribute) and func.attr == "load" and getattr(func.value, "id", "") == "torch":
                value = _keyword(call, "weights_only")
                assert isinstance(value, ast.Constant) and value.value is True, f"{path}:{call.lineno}"


def test_no_pickle_or_shell_execution_in_the_package():
    forbidden = re.compile(r"\bpickle\.loads?\(|\bos\.system\(|shell=True|(?<![.\w])eval\(|(?<![.\w])exec\(")
    for path in PYTHON_SOURCES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not forbidden.search(line), f"{path}:{number}: {line.strip()}"


def test_rules_run_scripts_not_shell_commands():
    # Config and data values reach jobs as Python objects (snakemake.params), never through a shell.
    for path in RULE_FILES:
        text = path.read_text()
        assert not re.search(r"^\s+(shell|run):", text, flags=re.M), path
