"""The SLURM profile (profiles/slurm) on a real single-node SLURM that .ci/slurm/start.sh starts here.

Jobs go through sbatch and the snakemake-executor-plugin-slurm for real: a throwaway one-rule workflow
first (seconds), then the repository's workflow on the tiny config (minutes). The cluster has no slurmdbd,
so the plugin's status command is squeue instead of its default sacct.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workflow_helpers import REPO, TINY

pytestmark = pytest.mark.slurm

START = REPO / ".ci" / "slurm" / "start.sh"
STOP = REPO / ".ci" / "slurm" / "stop.sh"
PROFILE = REPO / "profiles" / "slurm"
RUN_DIR = Path(os.environ.get("SLURM_CI_DIR", "/tmp/slurm-ci"))

# Options for a cluster without accounting storage, and quick status checks for short test jobs.
# (No --slurm-no-account: without an account the plugin's guess through sacct fails with a warning and
# it submits without -A, which is what this cluster wants.)
CI_CLUSTER_OPTIONS = (
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
    # Successful jobs' SLURM logs are kept, so that the test can read them.
    "--slurm-keep-successful-logs",
    "--latency-wait", "5",
)

SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: (\S+?)\)")


def _slurm_answers(env: dict) -> bool:
    proc = subprocess.run(["sinfo", "--noheader"], env=env, capture_output=True, text=True, timeout=30)
    return proc.returncode == 0


# A machine with its own SLURM (every cluster login node) has this file; start.sh then refuses to start a
# second cluster, and these tests skip unless the user opts in to run them against the existing one.
SYSTEM_SLURM_CONF = Path("/etc/slurm/slurm.conf")
USE_EXISTING = "SLURM_TESTS_USE_EXISTING"  # 1: run against the machine's own SLURM
EXISTING_OPTIONS = {"SLURM_TESTS_PARTITION": "slurm_partition", "SLURM_TESTS_ACCOUNT": "slurm_account"}


def slurm_mode(system_conf: Path, environ) -> tuple[str, str | list[str]]:
    """("own", []): start the CI cluster here; ("existing", snakemake options): the user's SLURM, opted
    in; ("skip", reason) when this machine has its own SLURM and the user did not opt in."""
    if not system_conf.exists():
        return "own", []
    if environ.get(USE_EXISTING) != "1":
        return "skip", (f"{system_conf} exists: this machine has its own SLURM, which the tests leave alone; "
                        f"set {USE_EXISTING}=1 (and SLURM_TESTS_PARTITION / SLURM_TESTS_ACCOUNT) to run them on it")
    resources = [f"{name}={environ[var]}" for var, name in EXISTING_OPTIONS.items() if environ.get(var)]
    return "existing", (["--default-resources", *resources] if resources else [])


@pytest.fixture(scope="session")
def slurm_mode_here():
    return slurm_mode(SYSTEM_SLURM_CONF, os.environ)


@pytest.fixture(scope="session")
def slurm_env(slurm_mode_here):
    """Environment for SLURM clients: the CI cluster, started here unless it already runs; or, opted in,
    the machine's own SLURM."""
    mode, detail = slurm_mode_here
    if mode == "skip":
        pytest.skip(detail)
    if mode == "existing":
        yield dict(os.environ)
        return
    if shutil.which("slurmctld") is None or shutil.which("sbatch") is None:
        pytest.skip("SLURM is not installed (apt-get install -y slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld/slurmd with .ci/slurm/start.sh needs root")
    env = {**os.environ, "SLURM_CI_DIR": str(RUN_DIR), "SLURM_CONF": str(RUN_DIR / "slurm.conf")}
    already_running = (RUN_DIR / "slurm.conf").exists() and _slurm_answers(env)
    started = time.monotonic()
    proc = subprocess.run(["bash", str(START)], env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"{START} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    assert proc.stdout.strip() == f"export SLURM_CONF={RUN_DIR / 'slurm.conf'}"
    print(f"SLURM up after {time.monotonic() - started:.1f}s ({'reused' if already_running else 'started'})")
    yield env
    # A cluster that was up before the tests (e.g. started by CI) is left running for its owner.
    if not already_running:
        subprocess.run(["bash", str(STOP)], env=env, capture_output=True, text=True, timeout=120)


def test_machine_with_its_own_slurm_skips_unless_opted_in(tmp_path):
    """Faked: a slurm.conf where a cluster login node has one."""
    conf = tmp_path / "slurm.conf"
    assert slurm_mode(conf, {}) == ("own", [])
    conf.write_text("ClusterName=theirs\n")
    mode, reason = slurm_mode(conf, {})
    assert mode == "skip" and str(conf) in reason and USE_EXISTING in reason
    assert slurm_mode(conf, {USE_EXISTING: "1"}) == ("existing", [])
    assert slurm_mode(conf, {USE_EXISTING: "1", "SLURM_TESTS_PARTITION": "gpu", "SLURM_TESTS_ACCOUNT": "lab"}) == (
        "existing", ["--default-resources", "slurm_partition=gpu", "slurm_account=lab"])


def run_with_profile(env: dict, snakefile: Path, workdir: Path, *args: str, timeout: float):
    mode, options = slurm_mode(SYSTEM_SLURM_CONF, os.environ)
    cluster_options = (CI_CLUSTER_OPTIONS if mode == "own"
                       else (*options, "--slurm-keep-successful-logs", "--latency-wait", "30"))
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir),
        "--profile", str(PROFILE), *cluster_options, "--verbose", *args,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}): {' '.join(cmd)}\n--- stdout\n{proc.stdout[-4000:]}"
            f"\n--- stderr\n{proc.stderr[-8000:]}"
        )
    return proc.stdout + proc.stderr


def submitted_jobs(output: str) -> dict[str, Path]:
    """{SLURM job id: its log file} for every job that the plugin reports as submitted."""
    return {jobid: Path(log) for jobid, log in SUBMITTED.findall(output)}


def slurm_history(env: dict) -> dict[str, str]:
    """{job id: state} of the jobs slurmctld still remembers (MinJobAge keeps finished ones for an hour)."""
    proc = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T"],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )
    return dict(line.split("|", 1) for line in proc.stdout.split())


def sbatch_calls(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.lstrip().startswith("sbatch call: ")]


THROWAWAY_SNAKEFILE = """
rule all:
    input: expand("out/{name}.txt", name=["a", "b"])

rule write_job_id:
    output: "out/{name}.txt"
    threads: 2
    resources: gpu=0
    shell: 'printf "%s\\\\n%s\\\\n%s\\\\n" "$SLURM_JOB_ID" "$SLURM_CPUS_PER_TASK" "$(hostname)" > {output}'
"""


def test_throwaway_rule_runs_as_slurm_jobs(slurm_env, tmp_path):
    """Two jobs of a one-rule workflow each run in their own SLURM allocation with the profile's requests."""
    (tmp_path / "Snakefile").write_text(THROWAWAY_SNAKEFILE)
    output = run_with_profile(slurm_env, tmp_path / "Snakefile", tmp_path, timeout=180)

    jobs = submitted_jobs(output)
    assert len(jobs) == 2, output[-3000:]
    written = {}
    for name in ("a", "b"):
        job_id, cpus, host = (tmp_path / "out" / f"{name}.txt").read_text().split()
        written[job_id] = name
        assert cpus == "2"  # threads: 2 became --cpus-per-task=2
        if slurm_mode(SYSTEM_SLURM_CONF, os.environ)[0] == "own":
            assert host == os.uname().nodename  # the CI cluster's one node is this machine
    # Each output was written inside the SLURM job that the plugin submitted for it ...
    assert set(written) == set(jobs)
    history = slurm_history(slurm_env)
    for job_id, log in jobs.items():
        # ... which slurmctld ran to completion, and whose SLURM log the plugin kept.
        assert history.get(job_id) == "COMPLETED", history
        assert log.is_file() and log.parent.name == written[job_id]
        assert log.is_relative_to(tmp_path / ".snakemake" / "slurm_logs" / "rule_write_job_id")
    # The profile's default resources become sbatch requests; gpu=0 requests no GPU at all.
    calls = sbatch_calls(output)
    assert len(calls) == 2
    for call in calls:
        assert "--mem 4000" in call and "-t 60" in call and "--cpus-per-task=2" in call
        assert "--gpus" not in call and "--gres" not in call


@pytest.mark.slow
@pytest.mark.heavy
def test_workflow_runs_through_slurm(slurm_env, tmp_path):
    """The repository's workflow on the tiny config: every non-local job is a SLURM job, outputs complete."""
    workdir = tmp_path / "run"
    # One task and one attack recipe: every stage still runs through SLURM (the local end-to-end tests cover
    # the whole tiny DAG), in half the jobs; each SLURM job pays a Snakemake start-up and torch import.
    overlay = tmp_path / "slurm_overlay.yaml"
    overlay.write_text("tasks: [sst2]\nattack: {recipes: [deepwordbug]}\n")
    output = run_with_profile(
        slurm_env, REPO / "Snakefile", workdir, "report", "--configfile", str(TINY), str(overlay), "--jobs", "4",
        timeout=570,
    )
    assert (workdir / "results/report/index.html").stat().st_size > 0
    scores = sorted((workdir / "results/eval").glob("*/advglue_score_seed0.json"))
    assert [p.parent.name for p in scores] == sorted(["transformer_pp", "gla", "mmfree"])

    jobs = submitted_jobs(output)
    history = slurm_history(slurm_env)
    assert jobs and all(history.get(job_id) == "COMPLETED" for job_id in jobs), history
    assert all(log.is_file() for log in jobs.values())
    # The compute-heavy rules ran as SLURM jobs (their logs sit under .snakemake/slurm_logs/rule_<name>).
    rules_run = {log.relative_to(workdir / ".snakemake" / "slurm_logs").parts[0] for log in jobs.values()}
    for rule in ("rule_finetune", "rule_evaluate", "rule_profile", "rule_advglue_score", "rule_attack",
                 "rule_build_report"):
        assert rule in rules_run, sorted(rules_run)
    for call in sbatch_calls(output):
        assert "--gpus" not in call  # CPU config: gpu=0 everywhere


def dry_run_requests(output: str) -> dict[str, list[dict]]:
    """{rule: [{"threads": n, resource: value, ...} per job]} from a dry run's job blocks."""
    jobs: dict[str, list[dict]] = {}
    for block in output.split("\nrule ")[1:]:
        rule, _, body = block.partition(":\n")
        request = {"threads": 1}  # Snakemake prints the threads line only above 1
        for line in body.splitlines():
            line = line.strip()
            if line.startswith("threads: "):
                request["threads"] = int(line.split(": ", 1)[1])
            elif line.startswith("resources: "):
                request.update(item.split("=", 1) for item in line.split(": ", 1)[1].split(", "))
            elif not line or line.startswith("Shell command"):
                break
        jobs.setdefault(rule.strip(), []).append(request)
    return jobs


# Cluster requests as config/paper.yaml writes them, on the tiny config (a small DAG: the dry run takes seconds)
REQUESTS = {
    "finetune": {"threads": 8, "resources": {"mem_mb": 64000, "runtime": 1440, "gpu": 1}},
    "evaluate": {"threads": 8, "resources": {"mem_mb": 32000, "runtime": 120, "gpu": 1}},
    "profile": {"threads": 8, "resources": {"mem_mb": 64000, "runtime": 240, "gpu": 1}},
    "attack": {"threads": 8, "resources": {"mem_mb": 32000, "runtime": 720, "gpu": 1}},
}


@pytest.mark.parametrize("cores", [None, "64"])
def test_slurm_dry_run_shows_what_each_job_requests(tmp_path, cores):
    """`snakemake -n --profile profiles/slurm` (no cluster needed) shows each job's threads, memory, runtime and
    GPUs as the run asks SLURM for them: not capped at 1 thread by the dry run, and a profile job's own
    threads, not every core of the submit host (--cores 64)."""
    import yaml

    from workflow_helpers import run_snakemake

    overlay = tmp_path / "requests.yaml"
    overlay.write_text(yaml.safe_dump(REQUESTS))
    args = ["--dry-run", "--profile", str(PROFILE), "report", "--configfile", str(TINY), str(overlay)]
    proc = run_snakemake(tmp_path, *args, *(["--cores", cores] if cores else []), timeout=300)
    jobs = dry_run_requests(proc.stdout + proc.stderr)
    for rule, wanted in REQUESTS.items():
        assert jobs[rule], rule
        expected = (str(wanted["threads"]), *(str(wanted["resources"][k]) for k in ("mem_mb", "runtime", "gpu")))
        for request in jobs[rule]:
            assert (str(request["threads"]), request["mem_mb"], request["runtime"], request["gpu"]) == expected, (
                rule, request)
    assert all(request["slurm_extra"] == "--exclusive" for request in jobs["profile"])
