"""Messages a user reads when something is wrong: a config file Snakemake cannot parse names the file and the
line, a key given twice in one is an error, a TSV with a byte-order mark says so visibly, and the bundled
data's checksum tool runs without runpy's warning."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workflow_helpers import REPO, TINY, run_snakemake


@pytest.mark.parametrize("text, where, what", [
    ("finetune:\n  lr: 0.1\n   epochs: 2\n", "line 3, column 10", "mapping values are not allowed"),
    ("finetune:\n\tlr: 0.1\n", "line 2", "tabs"),
    ("tasks: [sst2, rte\nseeds: [0]\n", "line 2", "not valid YAML"),
    ("finetune:\n  lr: 0.1\nfinetune:\n  epochs: 2\n", "line 3, column 1", "'finetune' a second time (first on line 1)"),
    ("- a\n- b\n", "", "mapping of keys at the top level"),
])
def test_a_bad_config_file_names_its_line(tmp_path, text, where, what):
    from kernels.configfile import ConfigFileError, check_config_file

    path = tmp_path / "overlay.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError) as caught:
        check_config_file(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and where in message and what in message, message


def test_valid_config_files_pass():
    from kernels.configfile import check_config_file

    for path in (REPO / "config").glob("*.yaml"):
        if path.name != "schema.yaml":
            check_config_file(path)
    check_config_file(TINY)


def _checkout_with_own_config(tmp_path: Path) -> Path:
    """The workflow with its own copy of config/ (the rest linked), for a test that breaks config.yaml."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for entry in REPO.iterdir():
        if entry.name in ("config", "Snakefile", "rules", ".git", "results", ".snakemake", ".venv"):
            continue
        (checkout / entry.name).symlink_to(entry)
    shutil.copytree(REPO / "config", checkout / "config")
    shutil.copytree(REPO / "rules", checkout / "rules")
    shutil.copy(REPO / "Snakefile", checkout / "Snakefile")
    return checkout


def test_the_workflow_names_the_line_of_its_own_broken_config(tmp_path):
    checkout = _checkout_with_own_config(tmp_path)
    config = checkout / "config" / "config.yaml"
    lines = config.read_text().splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if line.startswith("  bootstrap_samples"))
    lines[number] = " " + lines[number]  # one space too many, as an editor slip makes it
    config.write_text("".join(lines))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(checkout / "Snakefile"), "--directory",
                           str(tmp_path / "run"), "--dry-run", "report"], capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{config}, line {number + 1}" in out, out[-2000:]


def test_a_key_given_twice_in_a_configfile_overlay_stops_the_workflow(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("finetune:\n  lr: 0.1\nfinetune:\n  epochs: 2\n")
    proc = run_snakemake(tmp_path, "--dry-run", "report", "--configfile", str(overlay), check=False, timeout=300)
    assert proc.returncode != 0
    assert f"{overlay}, line 3" in proc.stdout + proc.stderr


def test_a_byte_order_mark_is_shown_and_named(tmp_path):
    from kernels.data import DataValidationError, read_glue_tsv

    path = tmp_path / "train.tsv"
    path.write_bytes(b"\xef\xbb\xbfsentence\tlabel\nnice film\t1\n")
    with pytest.raises(DataValidationError) as caught:
        read_glue_tsv(path, "sst2")
    message = str(caught.value)
    assert "'\\ufeffsentence'" in message  # visible, not an invisible character before 'sentence'
    assert "byte-order mark" in message and "EF BB BF" in message


def test_the_checksum_tool_runs_without_runpys_warning(tmp_path):
    data = tmp_path / "data"
    (data / "glue").mkdir(parents=True)
    (data / "glue" / "x.tsv").write_text("a\tb\n")
    env = {**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning"}
    proc = subprocess.run([sys.executable, "-m", "kernels.data.bundled", str(data)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning" not in proc.stderr and "found in sys.modules" not in proc.stderr
    assert (data / "SHA256SUMS").read_text().endswith("  ./glue/x.tsv\n")
    proc = subprocess.run([sys.executable, "-m", "kernels.data.bundled", str(tmp_path / "absent")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "no such directory" in proc.stderr and "Traceback" not in proc.stderr
