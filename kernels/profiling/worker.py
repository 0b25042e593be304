"""Fork server for CPU profiling: ``python -m kernels.profiling.worker`` reads one job (JSON) on stdin,
builds the model once, and measures every grid point in its own forked child. It writes a JSON list of
results, one per point, on stdout.

Why a separate process that forks: peak RSS is per process and memory freed by the allocator is not
returned to the system, so points measured one after another in one process would hide each other's
peaks. A forked child starts from the server's memory image, so its peak RSS growth is exactly the
point's own (less library code paged in on first use, see ``_measure_in_child``). GNU OpenMP's thread
pool does not survive fork (a child that uses OpenMP after the parent has used it hangs), so this server
computes with one thread only and never starts the pool; the children then run with the configured
number of threads, and so does the child that measures the matmul peak (``measure_peak_forked``).
Spawning a fresh interpreter per point instead would cost an import of torch (seconds) per point.

The server and its children die with the job that started them: the job passes its PID, and the server
asks the kernel for SIGKILL when that parent dies (``prctl(PR_SET_PDEATHSIG)`` on Linux; elsewhere a thread
polls the parent), as does every forked child when the server dies. A job killed with SIGKILL (the OOM
killer, ``kill -9``, a cluster's time limit) therefore leaves no worker measuring beside its re-run. The
command line names the checkout (``--checkout``), so that a new profile job can refuse to start while a
worker of the same checkout is still alive (:func:`live_workers`).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import resource
import select
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

# Generous: a point that has not finished in this time is hung, not slow.
POINT_TIMEOUT_S = 1800.0

MODULE = "kernels.profiling.worker"
CHECKOUT_FLAG = "--checkout"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_S = 1.0


def checkout_root() -> str:
    """The checkout this package is loaded from (what a worker's ``--checkout`` names)."""
    return str(Path(__file__).resolve().parents[2])


def _set_parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where prctl is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _poll_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    if os.getpgrp() == os.getpid():  # the server leads its own group (see sweep): its point children too
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """End this process (and, where prctl is missing, its process group) as soon as ``parent`` dies."""
    if not _set_parent_death_signal():
        threading.Thread(target=_poll_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was set up
        os._exit(1)


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def live_workers(checkout: str | None = None) -> list[int]:
    """PIDs of profiling workers (servers and their point children) of ``checkout`` (this one by default)
    that are alive on this machine, read from /proc; [] where there is no /proc."""
    checkout = checkout or checkout_root()
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = _cmdline(int(entry.name))
        if MODULE in argv and CHECKOUT_FLAG in argv[:-1] and argv[argv.index(CHECKOUT_FLAG) + 1] == checkout:
            found.append(int(entry.name))
    return sorted(found)


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    # Writing 5 to clear_refs resets VmHWM (peak RSS) to the current RSS (Linux >= 4.0).
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _limit_data_growth(limit_mb: float | None) -> None:
    # RLIMIT_DATA counts writable private mappings (heap and anonymous mmap), so it bounds what the
    # point itself can allocate; address-space reservations of malloc arenas are not counted.
    if limit_mb is None:
        return
    current_kb = _status_kb("VmData") or 0
    limit = int((current_kb * 1024) + limit_mb * 2**20)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.getrlimit(resource.RLIMIT_DATA)[1]))


class RssProbe:
    """Peak resident-set growth of this (forked) process since :meth:`start`, less the growth of file-backed
    pages: library code pages are faulted into a forked child lazily and count towards its RSS, but they are
    not the point's memory. File-backed pages stay mapped, so their growth by the end is their growth at the
    peak, and subtracting it leaves the peak growth of anonymous (heap) memory."""

    def __init__(self):
        self.baseline_kb = self.baseline_file_kb = None

    def start(self) -> None:
        _reset_peak_rss()
        self.baseline_kb, self.baseline_file_kb = _status_kb("VmRSS"), _status_kb("RssFile")

    def peak_growth_mb(self) -> float:
        peak_kb, file_kb = _status_kb("VmHWM"), _status_kb("RssFile")
        if None in (self.baseline_kb, peak_kb, self.baseline_file_kb, file_kb):
            return float("nan")
        return max(0, (peak_kb - self.baseline_kb) - (file_kb - self.baseline_file_kb)) / 1024


def _measure_in_child(model, spec, point, settings, device) -> dict[str, Any]:
    import torch

    from kernels.profiling.measure import is_out_of_memory, run_point

    torch.set_num_threads(settings.threads)
    _limit_data_growth(settings.memory_limit_mb)
    try:
        row = run_point(model, spec, point["mode"], point["batch_size"], point["seq_len"], settings, device,
                        probe=RssProbe())
    except BaseException as error:  # noqa: BLE001 - classified right here
        if is_out_of_memory(error):
            return {"status": "oom", "error": f"{type(error).__name__}: {str(error)[:300]}"}
        return {"status": "error", "error": traceback.format_exc()}
    row["status"] = "ok"
    return row


def _read_child(read_fd: int, pid: int) -> bytes:
    chunks = []
    while True:
        ready, _, _ = select.select([read_fd], [], [], POINT_TIMEOUT_S)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            raise TimeoutError(f"profiling point in process {pid} did not finish in {POINT_TIMEOUT_S} s")
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _run_in_child(compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``compute`` in a forked child and return its JSON-able result; a child killed by SIGKILL (the
    OOM killer) gives status ``oom``, any other death status ``error``."""
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        die_with_parent(parent)  # the death signal is not inherited across fork
        code = 0
        try:
            result = compute()
            with os.fdopen(write_fd, "w", encoding="utf-8") as out:
                json.dump(result, out)
        except BaseException:  # noqa: BLE001 - a child must never return into the server's code
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        payload = _read_child(read_fd, pid)
    finally:
        os.close(read_fd)
        _, wait_status = os.waitpid(pid, 0)
    if payload:
        return json.loads(payload)
    if os.WIFSIGNALED(wait_status):
        number = os.WTERMSIG(wait_status)
        status = "oom" if number == signal.SIGKILL else "error"
        return {"status": status, "error": f"child process killed by signal {signal.Signals(number).name}"}
    return {"status": "error", "error": f"child process exited with status {os.waitstatus_to_exitcode(wait_status)} "
                                         "without a result (see its traceback above)"}


def run_forked(model, spec, point, settings, device) -> dict[str, Any]:
    """Measure ``point`` in a forked child (its own peak RSS, see the module docstring)."""
    return _run_in_child(lambda: _measure_in_child(model, spec, point, settings, device))


def _peak_in_child(settings) -> dict[str, Any]:
    from kernels.profiling.peak import measure_matmul_peak_gflops

    return {"status": "ok", "peak_gflops": measure_matmul_peak_gflops("cpu", settings.dtype, settings.threads)}


def measure_peak_forked(settings) -> float:
    """The CPU matmul peak with the points' thread count: in a child, since the server keeps one thread."""
    result = _run_in_child(lambda: _peak_in_child(settings))
    if result.get("status") != "ok":
        raise RuntimeError(f"measuring the matmul peak failed ({result.get('status')}): {result.get('error')}")
    return float(result["peak_gflops"])


def serve(job: dict[str, Any]) -> list[dict[str, Any]]:
    import torch

    # One thread in the server: see the module docstring (OpenMP and fork).
    torch.set_num_threads(1)
    from kernels.profiling.measure import count_parameters, resolve_builder
    from kernels.profiling.spec import ModelSpec
    from kernels.profiling.settings import settings_from_dict

    spec = ModelSpec(**job["spec"])
    settings = settings_from_dict(job["settings"])
    device = torch.device("cpu")
    # float32 weights whatever the profile dtype: the points compute under autocast, as fine-tuning does.
    model = resolve_builder(spec.builder)(spec).to(device=device)
    params = count_parameters(model)
    # Measured first, on the points' device, dtype and thread count: the denominator of their MFU.
    peak_gflops = measure_peak_forked(settings)
    print(f"[profile] matmul peak {peak_gflops:.1f} GFLOP/s ({settings.dtype}, {settings.threads} thread(s))",
          file=sys.stderr, flush=True)
    results = []
    for point in job["points"]:
        result = run_forked(model, spec, point, settings, device)
        result.update(point, params=params, peak_gflops=peak_gflops)
        print(f"[profile] {point['mode']} batch={point['batch_size']} seq_len={point['seq_len']}: "
              f"{result['status']} median_ms={result.get('median_ms', float('nan')):.3f}",
              file=sys.stderr, flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument(CHECKOUT_FLAG, default=checkout_root(), help="the checkout whose job started this worker")
    parser.add_argument("--parent", type=int, help="PID of the job: the worker ends when it does")
    args = parser.parse_args(argv)
    if args.parent is not None:
        die_with_parent(args.parent)
    job = json.load(sys.stdin)
    # Keep stdout for the result only: anything printed by libraries goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    results = serve(job)
    json.dump(results, protocol)
    protocol.close()


if __name__ == "__main__":
    main()
