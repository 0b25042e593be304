"""The profiling sweep: every (mode, batch size, sequence length) of the settings, one CSV row each."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from kernels.ops.backend import kernel_provenance
from kernels.profiling.columns import COLUMNS, STATUSES
from kernels.profiling.settings import ProfileSettings
from kernels.profiling.spec import ModelSpec

# torch is imported where CUDA points run: on CPU this process only hands the points to a worker (which
# imports torch itself), so the job does not pay for torch twice.


class ProfilingError(RuntimeError):
    """A grid point failed for a reason other than running out of memory."""


def grid_points(settings: ProfileSettings) -> list[dict[str, Any]]:
    return [{"mode": mode, "batch_size": batch, "seq_len": seq_len}
            for mode in settings.modes for batch in settings.batch_sizes for seq_len in sorted(settings.seq_lens)]


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ProfilingError("profile settings ask for device 'cuda' but torch sees no CUDA device")
    return requested


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _worker_environment() -> dict[str, str]:
    env = dict(os.environ)
    # The fork server computes with one thread (see kernels.profiling.worker); children raise it.
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def _stderr_file():
    """Where the worker's stderr goes: this process's current ``sys.stderr`` when it is a real file (the
    rule's log under ``kernels.io.log_to``, whose redirect a child process would not see otherwise)."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    sys.stderr.flush()
    return sys.stderr


def _profile_cpu(spec: ModelSpec, settings: ProfileSettings, in_process: bool) -> list[dict[str, Any]]:
    job = {"spec": dataclasses.asdict(spec), "settings": settings.to_dict(), "points": grid_points(settings)}
    if in_process:
        return _serve_in_process(job, settings)
    from kernels.profiling.worker import CHECKOUT_FLAG, MODULE, checkout_root

    command = [sys.executable, "-m", MODULE, CHECKOUT_FLAG, checkout_root(), "--parent", str(os.getpid())]
    # Its own process group, killed on the way out whatever happens here (an error, Ctrl-C); a SIGKILL of
    # this process is covered by the worker's parent-death signal (kernels.profiling.worker.die_with_parent).
    worker = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=_stderr_file(),
                              text=True, env=_worker_environment(), start_new_session=True)
    try:
        stdout, _ = worker.communicate(json.dumps(job))
    finally:
        _end_process_group(worker)
    if worker.returncode != 0:
        raise ProfilingError(f"profiling worker for family {spec.family!r} failed with exit code "
                             f"{worker.returncode} (its traceback is in the log above)")
    return json.loads(stdout)


def _end_process_group(worker: subprocess.Popen) -> None:
    """SIGKILL whatever is left of the worker's process group (the server and its point children)."""
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone
    worker.wait()


def check_no_other_worker() -> None:
    """Refuse to start while a profiling worker of this checkout is alive on this machine (a job killed
    before this release, or another Snakemake run beside this one): its measurements and ours would share the
    cores and distort each other."""
    from kernels.profiling.worker import checkout_root, live_workers

    pids = live_workers()
    if pids:
        raise ProfilingError(
            f"another profiling worker of this checkout ({checkout_root()}) is running: PID "
            f"{', '.join(map(str, pids))}. Profile jobs must run alone; wait for it to finish, or end it "
            f"(kill {' '.join(map(str, pids))}) if its job is gone, then run this job again")


def _serve_in_process(job: dict[str, Any], settings: ProfileSettings) -> list[dict[str, Any]]:
    # Forking this process is only safe without OpenMP threads in the children (see worker's docstring).
    import torch

    from kernels.profiling.worker import serve

    if settings.threads != 1:
        raise ProfilingError("in-process CPU profiling needs threads == 1; use the fork server for more threads")
    previous = torch.get_num_threads()
    try:
        return serve(job)
    finally:
        torch.set_num_threads(previous)


def _profile_cuda_point(model, spec, point, settings, device) -> dict[str, Any]:
    import torch

    from kernels.profiling.measure import CudaMemoryProbe, is_out_of_memory, run_point

    gc.collect()
    torch.cuda.empty_cache()
    try:
        row = run_point(model, spec, point["mode"], point["batch_size"], point["seq_len"], settings, device,
                        probe=CudaMemoryProbe(device))
    except BaseException as error:  # noqa: BLE001 - classified right here
        if not is_out_of_memory(error):
            raise
        return {"status": "oom", "error": f"{type(error).__name__}: {str(error)[:300]}"}
    finally:
        model.zero_grad(set_to_none=True)
    row["status"] = "ok"
    return row


def _profile_cuda(spec: ModelSpec, settings: ProfileSettings) -> list[dict[str, Any]]:
    # CUDA memory is tracked per allocator, not per process, so the points run in this process.
    import torch

    from kernels.profiling.measure import count_parameters, resolve_builder
    from kernels.profiling.peak import measure_matmul_peak_gflops

    torch.set_num_threads(settings.threads)
    device = torch.device("cuda")
    # float32 weights whatever the profile dtype: the points compute under autocast, as fine-tuning does, and
    # the rotary frequency buffers stay float32.
    model = resolve_builder(spec.builder)(spec).to(device=device)
    params = count_parameters(model)
    # Measured first, on the points' device and dtype: the denominator of their MFU.
    peak_gflops = measure_matmul_peak_gflops(device, settings.dtype)
    print(f"[profile] matmul peak {peak_gflops:.1f} GFLOP/s ({settings.dtype})", file=sys.stderr, flush=True)
    results = []
    for point in grid_points(settings):
        result = _profile_cuda_point(model, spec, point, settings, device)
        result.update(point, params=params, peak_gflops=peak_gflops)
        print(f"[profile] {point['mode']} batch={point['batch_size']} seq_len={point['seq_len']}: "
              f"{result['status']}", file=sys.stderr, flush=True)
        results.append(result)
    return results


def profile_model(spec: ModelSpec, settings: ProfileSettings, model_name: str,
                  in_process: bool = False) -> pd.DataFrame:
    """Run the sweep for one model; rows in :data:`COLUMNS` order, OOM points with status ``oom``.

    On CPU every point runs in a child forked from a fresh fork server (``python -m
    kernels.profiling.worker``). ``in_process=True`` forks the children from this process instead, which
    saves starting that server (seconds) but is allowed only with ``threads == 1``.
    Raises :class:`ProfilingError` when a point fails for another reason (a bug must not become a row).
    Every row carries the device's matmul peak measured before the points (``peak_gflops``) and the
    point's ``mfu`` against it.
    """
    check_no_other_worker()
    device = resolve_device(settings.device)
    if device == "cuda":
        import torch

        results, device_name = _profile_cuda(spec, settings), torch.cuda.get_device_name()
    else:
        results, device_name = _profile_cpu(spec, settings, in_process), cpu_name()
    failures = [r for r in results if r["status"] not in STATUSES]
    if failures:
        first = failures[0]
        raise ProfilingError(f"profiling {model_name!r} failed at mode={first['mode']} batch_size="
                             f"{first['batch_size']} seq_len={first['seq_len']}:\n{first.get('error')}")
    frame = pd.DataFrame(results)
    frame["model"], frame["device"], frame["device_name"] = model_name, device, device_name
    frame["threads"], frame["dtype"] = settings.threads, settings.dtype
    provenance = kernel_provenance(device)
    for column in ("kernels", "fla_version", "triton_version"):
        frame[column] = provenance[column]
    frame = frame.reindex(columns=COLUMNS)
    # Points that ran out of memory have no achieved rate, so no MFU (NaN).
    frame["mfu"] = frame["achieved_gflops"] / frame["peak_gflops"]
    return frame
