"""Re-runs that are exactly right, on a copy of the checkout: moving the checkout with its results or
reordering config keys plans nothing; editing a bundled data file re-runs exactly what reads it, and that
job then fails on the checksum; a failing job of each model stage leaves its traceback in its rule log."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow_helpers import REPO

pytestmark = pytest.mark.slow

TARGET = "results/models/gla/rte/seed0/config.json"


def copy_checkout(target: Path) -> Path:
    """The checkout's files (tracked and new, not ignored ones such as results/ or .venv/) copied to target."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def snakemake(checkout: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(checkout / "Snakefile"), "--directory", str(checkout),
           "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def planned(checkout: Path, *args: str) -> dict[str, int]:
    text = (lambda p: p.stdout + p.stderr)(snakemake(checkout, "--dry-run", *args))
    if "Nothing to be done" in text:
        return {}
    counts = {}
    for line in text.split("Job stats:", 1)[1].splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
        if parts[:1] == ["total"]:
            break
    return counts


def reordered(value):
    """The same config with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    return value


@pytest.fixture(scope="module")
def moved_checkout(tmp_path_factory) -> Path:
    first = copy_checkout(tmp_path_factory.mktemp("checkout") / "a")
    tiny = first / "tests/configs/tiny.yaml"
    snakemake(first, TARGET, "results/data/advglue/rte.parquet", "--configfile", str(tiny))
    # a config with the same values, keys in another order
    merged = yaml.safe_load((first / "config/config.yaml").read_text())
    for section, values in yaml.safe_load(tiny.read_text()).items():
        merged[section] = {**merged[section], **values} if isinstance(values, dict) else values
    for name, model in yaml.safe_load(tiny.read_text())["models"].items():
        merged["models"][name] = {**yaml.safe_load((first / "config/config.yaml").read_text())["models"][name], **model}
    (first / "reordered.yaml").write_text(yaml.safe_dump(reordered(merged), sort_keys=False))
    moved = first.parent / "b"
    first.rename(moved)
    return moved


def test_moved_checkout_and_reordered_config_plan_nothing(moved_checkout):
    tiny = moved_checkout / "tests/configs/tiny.yaml"
    assert planned(moved_checkout, TARGET, "--configfile", str(tiny)) == {}
    assert planned(moved_checkout, TARGET, "--configfile", str(moved_checkout / "reordered.yaml")) == {}


def own_copy(checkout: Path, tmp_path: Path) -> Path:
    """A copy (results and all, mtimes kept) for a test that changes things, so tests need no order."""
    return Path(shutil.copytree(checkout, tmp_path / "own", symlinks=True))


@pytest.mark.heavy  # 30 s of failing Snakemake jobs
def test_failing_model_jobs_keep_their_traceback_in_the_log(moved_checkout, tmp_path):
    """A fine-tune, an evaluation and a profiling job that stop at once (kernels.require_fla on a CPU machine)."""
    moved_checkout = own_copy(moved_checkout, tmp_path)
    tiny = str(moved_checkout / "tests/configs/tiny.yaml")
    require_fla = moved_checkout / "require_fla.yaml"
    require_fla.write_text("kernels: {require_fla: true}\n")
    # the evaluation first: a failed fine-tune job's outputs are gone (Snakemake removes them)
    for target, rule, log in (("results/eval/gla/rte/seed0/metrics.json", "evaluate", "logs/evaluate/gla/rte/seed0.log"),
                              ("results/efficiency/gla.csv", "profile", "logs/profile/gla.log"),
                              (TARGET, "finetune", "logs/finetune/gla/rte/seed0.log")):
        (moved_checkout / log).unlink(missing_ok=True)
        proc = snakemake(moved_checkout, target, "--configfile", tiny, str(require_fla), "--allowed-rules", rule,
                         check=False)
        assert proc.returncode != 0
        text = (moved_checkout / log).read_text()
        assert "Traceback (most recent call last)" in text, text[-2000:]
        assert "ERROR: RuntimeError: config kernels.require_fla is true" in text
        assert "kernels.require_fla" in proc.stderr + proc.stdout  # and still on the console


def test_edited_bundled_file_reruns_what_reads_it_and_fails_on_its_checksum(moved_checkout, tmp_path):
    moved_checkout = own_copy(moved_checkout, tmp_path)
    assert planned(moved_checkout, TARGET, "--configfile", str(moved_checkout / "tests/configs/tiny.yaml")) == {}
    tiny = str(moved_checkout / "tests/configs/tiny.yaml")
    bundled = moved_checkout / "resources/data/glue/rte/train.tsv"
    lines = bundled.read_text(encoding="utf-8").splitlines(keepends=True)
    bundled.write_text("".join(lines[:-1]), encoding="utf-8")  # truncated at a line boundary
    plan = planned(moved_checkout, TARGET, "--configfile", tiny)
    # exactly what reads it: RTE's data, the tokenizer trained on it, the RTE fine-tune (not SST-2's data)
    assert plan == {"prepare_glue": 1, "train_tokenizer": 1, "finetune": 1}, plan
    proc = snakemake(moved_checkout, "results/data/glue/rte/train.parquet", "--configfile", tiny, check=False)
    assert proc.returncode != 0
    log = (moved_checkout / "logs/prepare_glue/rte.log").read_text()
    assert "resources/data/glue/rte/train.tsv: SHA-256 " in log and "does not match 81d25e32" in log
    assert "ERROR: DataValidationError" in log
