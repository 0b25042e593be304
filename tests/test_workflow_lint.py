"""Workflow hygiene: rules formatted with snakefmt and `snakemake --lint` has nothing to say."""

import shutil
import subprocess
import sys

import pytest

from workflow_helpers import REPO


def test_rules_are_snakefmt_formatted():
    snakefmt = shutil.which("snakefmt") or pytest.skip("snakefmt not installed (pip install -e '.[test]')")
    proc = subprocess.run([snakefmt, "--check", "--diff", "Snakefile", "rules"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakemake_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Lints for" not in output, output
