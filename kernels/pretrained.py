"""Checks of a ``models.<name>.pretrained`` source that run when the workflow starts, before any job (and so
before Snakemake removes the previous outputs of a job that would read it): an existing local directory
with ``config.json`` and complete safetensors weights, or a hub id of the valid form.

Plain Python (json, os, struct; no torch, no transformers, no huggingface_hub): the workflow loads this file
on its own to plan a run, and a family registry can call :func:`pretrained_errors` for its own families.
The same checks serve the jobs (:func:`safetensors_problem` for a checkpoint file that is about to be read,
:func:`hub_id_problem` before a hub look-up), so a truncated download names its path instead of failing
deep inside safetensors.
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")

# huggingface_hub's rule for a repo id: "name" or "namespace/name", letters, digits, "-", "_", ".", at most
# 96 characters, no "--" or "..", not starting or ending with "-" or ".".
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_HUB_ID = re.compile(rf"^(?:{_HUB_PART}/)?{_HUB_PART}$")


def hub_id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a hub repo id, or None when it has the valid form."""
    if len(value) > 96:
        return "longer than 96 characters"
    if not _HUB_ID.match(value):
        return "a hub id is 'name' or 'namespace/name' (letters, digits, '-', '_', '.')"
    if "--" in value or ".." in value:
        return "'--' and '..' are not allowed in a hub id"
    return None


def looks_like_path(value: str) -> bool:
    """A value meant as a local directory: absolute, home-relative, explicitly relative, or with more than
    one '/' (a hub id has at most one)."""
    return (os.path.isabs(value) or value.startswith(("~", "./", "../")) or value in (".", "..")
            or value.count("/") > 1 or os.sep != "/" and os.sep in value)


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with a safetensors file, from its header alone (no tensor is read), or None.

    The format: 8 bytes (little-endian header length N), N bytes of JSON ``{name: {"dtype", "shape",
    "data_offsets": [begin, end]}, "__metadata__": ...}``, then the tensor bytes; a complete file is exactly
    8 + N + the largest ``end`` bytes long. A truncated copy or download fails this check."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                return f"{size} bytes: too short for a safetensors header"
            (length,) = struct.unpack("<Q", head)
            if length > size - 8:
                return f"header says {length} bytes of metadata, the file has {size} bytes in all (truncated?)"
            header = json.loads(handle.read(length).decode("utf-8"))
    except OSError as err:
        return f"cannot be read ({err})"
    except (UnicodeDecodeError, ValueError) as err:
        return f"the header is not valid JSON ({err})"
    if not isinstance(header, dict):
        return "the header is not a JSON object"
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return f"tensor {name!r} has no valid data_offsets in the header"
        end = max(end, offsets[1])
    expected = 8 + length + end
    if size != expected:
        return (f"{size} bytes, but its header describes {expected} bytes "
                f"({'truncated' if size < expected else 'trailing bytes'})")
    return None


def weight_files(directory: Path) -> tuple[list[Path], list[str]]:
    """The safetensors files of a checkpoint directory (through the index when sharded) and the problems found."""
    index = directory / SAFETENSORS_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            files = [directory / name for name in sorted(set(weight_map.values()))]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            return [], [f"{index}: field 'weight_map' is missing or invalid ({err})"]
        missing = [f"{index}: lists shard {f.name}, which is missing" for f in files if not f.is_file()]
        return [f for f in files if f.is_file()], missing
    if (directory / SAFETENSORS_FILE).is_file():
        return [directory / SAFETENSORS_FILE], []
    singles = sorted(directory.glob("*.safetensors"))
    if len(singles) == 1:
        return singles, []
    return [], []


def checkpoint_dir_problems(directory: Path, allow_pickle: bool = False) -> list[str]:
    """Problems of a local checkpoint directory, each naming the file."""
    problems = []
    config = directory / "config.json"
    if not config.is_file():
        problems.append(f"{config}: missing (a checkpoint directory needs config.json)")
    else:
        try:
            parsed = json.loads(config.read_text(encoding="utf-8"))
            if not isinstance(parsed, dict) or "model_type" not in parsed:
                problems.append(f"{config}: field 'model_type' is missing")
        except (OSError, ValueError) as err:
            problems.append(f"{config}: not valid JSON ({err})")
    files, found = weight_files(directory)
    problems += found
    if not files and not found:
        if allow_pickle and any((directory / name).is_file() for name in PICKLE_FILES):
            return problems  # pickled weights, allowed by models.<name>.allow_pickle
        problems.append(f"{directory}: no {SAFETENSORS_FILE} (or {SAFETENSORS_INDEX}) found"
                        + ("; pickled weights are refused unless allow_pickle is set"
                           if any((directory / name).is_file() for name in PICKLE_FILES) else ""))
    for file in files:
        problem = safetensors_problem(file)
        if problem:
            problems.append(f"{file}: not a complete safetensors file: {problem}")
    return problems


def resolve_local(value: str, base: str | os.PathLike | None = None) -> Path | None:
    """The local directory ``value`` names (relative to ``base``, the working directory by default), or None."""
    path = Path(os.path.expanduser(value))
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path if path.exists() else None


def pretrained_errors(value: str | None, key: str, base: str | os.PathLike | None = None,
                      allow_pickle: bool = False) -> list[str]:
    """Errors of one ``pretrained:`` value, each naming ``key`` (e.g. ``models.gla.pretrained``); [] when it is
    null, a complete local checkpoint directory, or a hub id of the valid form (whose files are then
    fetched by the job)."""
    if value is None:
        return []
    if not isinstance(value, str) or not value.strip():
        return [f"{key}: must be a hub id or a directory, got {value!r}"]
    local = resolve_local(value, base)
    if local is not None:
        if not local.is_dir():
            return [f"{key}: {local} is a file; give the checkpoint's directory"]
        return [f"{key}: {problem}" for problem in checkpoint_dir_problems(local, allow_pickle)]
    where = Path(base or ".").resolve() / os.path.expanduser(value)
    if looks_like_path(value):
        return [f"{key}: directory {where} does not exist (and {value!r} is a path, not a hub id)"]
    problem = hub_id_problem(value)
    if problem:
        return [f"{key}: {value!r} is neither an existing directory ({where}) nor a hub id: {problem}"]
    return []


# ------------------------------------------------------------------------------------ jobs: a local copy

# What a job needs of a hub checkpoint: its config, weights and tokenizer files.
HUB_PATTERNS = ("config.json", "*.safetensors", SAFETENSORS_INDEX, "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt")


class PretrainedSourceError(ValueError):
    """A ``pretrained:`` source that is neither a usable directory nor a reachable hub checkpoint."""


def local_checkpoint_dir(value: str, revision: str | None = None, allow_pickle: bool = False) -> str:
    """A local directory holding the checkpoint ``value``: the directory itself, or the hub snapshot (from the
    local hub cache when it is there, else downloaded). The tokenizer and the weights are then read from that
    one directory, so a job makes no hub request when the files are local.

    Hub look-ups fail fast: with ``HF_HUB_OFFLINE=1`` an id that is not in the cache is an error at once, and
    otherwise one metadata request (timeout ``HF_HUB_ETAG_TIMEOUT``, 10 s by default, no retries) must answer
    before the download starts, instead of the libraries' retries of every file (a minute or more when the
    hub is unreachable)."""
    local = resolve_local(value)
    if local is not None:
        if not local.is_dir():
            raise PretrainedSourceError(f"{local}: checkpoint source must be a directory, not a file")
        return str(local)
    problem = "it is a path" if looks_like_path(value) else hub_id_problem(value)
    if problem:
        raise PretrainedSourceError(f"{value!r}: no such directory ({Path(value).resolve()}) and not a hub id "
                                    f"({problem})")
    from huggingface_hub import constants, snapshot_download

    patterns = list(HUB_PATTERNS) + (list(PICKLE_FILES) + ["pytorch_model-*.bin"] if allow_pickle else [])
    try:
        return snapshot_download(repo_id=value, revision=revision, allow_patterns=patterns, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the cache (huggingface_hub raises several kinds)
        pass
    offline = getattr(constants, "is_offline_mode", lambda: constants.HF_HUB_OFFLINE)()
    if offline:
        raise PretrainedSourceError(f"{value!r} (revision {revision!r}) is not a local directory "
                                    f"({Path(value).resolve()}) and not in the local hub cache, and HF_HUB_OFFLINE "
                                    "is set: download it first, or point pretrained: at a directory")
    problem = hub_answer_problem(constants.ENDPOINT, value, revision, constants.HF_HUB_ETAG_TIMEOUT)
    if problem:
        raise PretrainedSourceError(f"{value!r} (revision {revision!r}) is not a local directory "
                                    f"({Path(value).resolve()}) and {problem}")
    return snapshot_download(repo_id=value, revision=revision, allow_patterns=patterns)


def hub_answer_problem(endpoint: str, repo_id: str, revision: str | None, timeout: float) -> str | None:
    """Ask the hub once (one request, no retries) whether ``repo_id`` exists: None when it answers yes (or asks
    for a login, which the download then handles), else what went wrong."""
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"{endpoint.rstrip('/')}/api/models/{repo_id}"
    if revision:
        url += f"/revision/{urllib.parse.quote(revision, safe='')}"
    request = urllib.request.Request(url, headers=_auth_headers())
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):  # private or gated: the download says what to do
            return None
        return f"the hub answered {err.code} for it ({url})" + (": no such model or revision" if err.code == 404 else "")
    except (OSError, ValueError) as err:  # refused, unreachable, timed out
        return (f"the hub did not answer for it within {timeout} s ({url}: {err}); with no network, set "
                "HF_HUB_OFFLINE=1 to use the local hub cache only")


def _auth_headers() -> dict[str, str]:
    try:
        from huggingface_hub import get_token

        token = get_token()
    except Exception:  # noqa: BLE001 - no token configured
        token = None
    return {"authorization": f"Bearer {token}"} if token else {}
