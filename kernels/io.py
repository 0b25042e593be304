"""Atomic file output: every artefact is written to a temporary name beside its target and
renamed into place, so a killed job never leaves a file that Snakemake would take as complete.

Staging names are ``.<target name>.<random>.tmp`` (a file beside the target, or a folder beside an
output folder); a job killed while writing leaves one behind, and the next run of that job removes it
when it starts (:func:`remove_stale_staging`, called by :func:`log_to` with the job's outputs). A
progress or state file that turns out unreadable is moved aside with :func:`set_aside` and that part of
the job starts over: a damaged file never blocks a job for good.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Iterator


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def honour_umask(path: str | os.PathLike) -> None:
    """Give a file the permissions of a new file under the current umask (0644 under the usual 022):
    ``mkstemp`` and some writers (safetensors) create files 0600, which group members could not read."""
    os.chmod(path, 0o666 & ~_current_umask())


STAGING_SUFFIX = ".tmp"


def staging_pattern(name: str) -> str:
    """Glob of the staging names of an output called ``name`` (see the module docstring)."""
    return f".{name}.*{STAGING_SUFFIX}"


def remove_stale_staging(outputs) -> list[Path]:
    """Remove what killed writes of ``outputs`` left: staging files beside each output and staging folders
    beside each output's folder (the model and tokenizer folders are written through one). Run when a job
    starts: Snakemake runs one job per output at a time, so nothing else is writing these names then."""
    removed = []
    folders = set()
    for output in outputs:
        path = Path(output)
        candidates = list(path.parent.glob(staging_pattern(path.name)))
        if path.parent not in folders:
            folders.add(path.parent)
            candidates += list(path.parent.parent.glob(staging_pattern(path.parent.name)))
        for stale in candidates:
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    for stale in removed:
        print(f"removed {stale}, left by an earlier run of this job that was killed while writing", file=sys.stderr)
    return removed


def set_aside(path: str | os.PathLike, reason: str) -> Path:
    """Move a damaged progress or state file (or folder) out of the way, to ``<name>.damaged-<time>`` beside
    it, with a warning that names it and why: the job then starts that part over, and nothing the user may
    want to look at is deleted."""
    source = Path(path)
    target = source.with_name(f"{source.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    counter = 1
    while target.exists():
        target = source.with_name(f"{source.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{counter}")
        counter += 1
    os.replace(source, target)
    print(f"warning: {source} is damaged ({reason}); moved it to {target} and that part starts over",
          file=sys.stderr)
    return target


def read_json_state(path: str | os.PathLike) -> Any:
    """A JSON progress/state file, or None when it is missing or damaged (a damaged one is set aside)."""
    source = Path(path)
    if not source.exists():
        return None
    try:
        return json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        set_aside(source, f"{type(err).__name__}: {err}")
        return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it to ``path`` on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=STAGING_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; outputs get the usual permissions of a new file.
    honour_umask(tmp_path)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_parquet(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as parquet, atomically."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


@contextlib.contextmanager
def log_to(path: str | os.PathLike | None, outputs=()) -> Iterator[None]:
    """Send messages, warnings and progress bars (stderr) to a rule's log file when there is one.

    A job that fails writes its full traceback and a last ``ERROR: <cause>`` line into the log before
    the exception goes on to Snakemake (which prints it on the console): on a cluster the rule log is
    often the only place a user can read why a job failed. ``outputs`` (the job's output files) are
    cleared of staging files that a killed earlier run left (:func:`remove_stale_staging`).
    """
    if not path:
        remove_stale_staging(outputs)
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle, contextlib.redirect_stderr(handle):
        try:
            remove_stale_staging(outputs)
            yield
        except BaseException as err:
            traceback.print_exc(file=handle)
            handle.write(f"ERROR: {failure_cause(err)}\n")
            handle.flush()
            raise


def failure_cause(err: BaseException) -> str:
    """One line naming the exception and its message (the first line of it)."""
    message = str(err).strip().splitlines()
    return f"{type(err).__name__}: {message[0]}" if message else type(err).__name__


def write_csv(path: str | os.PathLike, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
