"""Profiling workers die with their job, and a profile job does not start beside a live one: a real profile
job of the workflow is killed with SIGKILL (as the OOM killer or a cluster's time limit would) while its
worker measures, and the worker and its point processes must be gone; a job refuses to start while a
worker of this checkout is alive, naming its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workflow_helpers import REPO, TINY

WORKER = "kernels.profiling.worker"


def _cmdline(pid: int) -> list[str]:
    try:
        return [p.decode() for p in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if p]
    except OSError:
        return []


def _parent(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                     if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return " Z" not in state  # a zombie has ended


def _descendants_of(root: int) -> list[int]:
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    found, frontier = [], {root}
    while frontier:
        children = [pid for pid in pids if _parent(pid) in frontier and pid not in found]
        found += children
        frontier = set(children)
    return found


def _workers_in(workdir: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and WORKER in _cmdline(int(entry.name)) and \
                    Path(os.readlink(entry / "cwd")).is_relative_to(workdir):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def _wait_for(condition, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")


def test_sigkill_of_a_profile_job_leaves_no_worker_behind(tmp_path):
    overlay = tmp_path / "long_profile.yaml"
    # long enough that the worker is still measuring when its job is killed
    overlay.write_text("profile: {seq_lens: [16, 32, 64, 128], time_budget_s: 60, min_repeats: 1000, "
                       "max_repeats: 100000}\n")
    workdir = tmp_path / "run"
    snakemake = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--cores", "2", "results/efficiency/gla.csv", "--configfile", str(TINY), str(overlay)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    workers = []
    try:
        def running_workers():
            return [pid for pid in _descendants_of(snakemake.pid) if WORKER in _cmdline(pid) and _alive(pid)]

        found = _wait_for(running_workers, timeout=240)
        assert found, "no profiling worker started"
        server = min(found, key=lambda pid: (WORKER not in _cmdline(_parent(pid) or 0), pid))
        job = _parent(server)  # the job's own process (Snakemake's script), the worker's parent
        assert job is not None and WORKER not in _cmdline(job)
        # let it reach its point children, then kill the job as the OOM killer would
        _wait_for(lambda: len(running_workers()) > 1, timeout=60)
        workers = running_workers()
        os.kill(job, signal.SIGKILL)
        left = _wait_for(lambda: not [pid for pid in workers if _alive(pid)], timeout=30) or \
            [pid for pid in workers if _alive(pid)]
        assert left is True, f"workers still running after their job was killed: {left}"
        snakemake.wait(timeout=120)
        assert snakemake.returncode != 0  # the job failed, and Snakemake says so
    finally:
        # orphans of the old behaviour, found by their working directory (this test's run): end each by its
        # PID, so that none measures on beside later tests
        for pid in set(workers) | set(_workers_in(workdir)):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if snakemake.poll() is None:
            os.killpg(snakemake.pid, signal.SIGKILL)
            snakemake.wait()


def test_a_profile_job_refuses_to_start_beside_a_live_worker_and_names_it(tmp_path):
    from kernels.profiling import ModelSpec, profile_model, settings_from_dict
    from kernels.profiling.sweep import ProfilingError
    from kernels.profiling.worker import checkout_root, live_workers

    # a real worker of this checkout, waiting for its job on stdin (as one left behind by a killed job would)
    worker = subprocess.Popen([sys.executable, "-m", WORKER, "--checkout", checkout_root()], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: WORKER in _cmdline(worker.pid), timeout=30)
        spec = ModelSpec(family="gla", arch={"hidden_size": 32, "num_hidden_layers": 1, "num_heads": 2},
                         vocab_size=300)
        settings = settings_from_dict({"modes": ["prefill"], "seq_lens": [8], "warmup": 0, "min_repeats": 1,
                                       "time_budget_s": 0.01})
        with pytest.raises(ProfilingError, match=rf"profiling worker of this checkout .* PID {worker.pid}\b"):
            profile_model(spec, settings, "gla", in_process=True)
    finally:
        worker.kill()
        worker.wait()
    assert worker.pid not in live_workers()  # gone: the next job starts


def test_workers_of_another_checkout_are_not_counted(tmp_path):
    from kernels.profiling.worker import live_workers

    other = subprocess.Popen([sys.executable, "-m", WORKER, "--checkout", str(tmp_path)], cwd=REPO,
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: WORKER in _cmdline(other.pid), timeout=30)
        assert other.pid in live_workers(str(tmp_path))
        assert other.pid not in live_workers()
    finally:
        other.kill()
        other.wait()


POLLING_PARENT = """
import os, subprocess, sys, time
# the worker's own set-up (die_with_parent) without prctl, then a long measurement (a sleep)
code = ("import time, kernels.profiling.worker as w; w._set_parent_death_signal = lambda: False; "
        f"w.die_with_parent({os.getpid()}); time.sleep(600)")
worker = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
print(worker.pid, flush=True)
time.sleep(600)
"""


def test_without_prctl_the_worker_polls_its_parent_and_ends_with_it():
    """Where the parent-death signal is not available (not Linux), a thread of the worker notices that its
    job is gone and ends the worker (and its process group)."""
    parent = subprocess.Popen([sys.executable, "-c", POLLING_PARENT], cwd=REPO, stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    try:
        assert _wait_for(lambda: _alive(worker), timeout=30)
        time.sleep(1)  # its polling thread is running
        assert _alive(worker)
        parent.kill()
        parent.wait()
        assert _wait_for(lambda: not _alive(worker), timeout=20), "the worker outlived its parent"
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)
