"""Checksums of the bundled data: every file read from ``data.bundled_dir`` must match its line in that
directory's ``SHA256SUMS`` (``<sha256>  ./<relative path>``, as ``sha256sum`` writes it), so an edited,
truncated or replaced file is refused with both hashes instead of silently changing results."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .schema import DataValidationError

CHECKSUMS = "SHA256SUMS"


def read_checksums(bundled_dir: str | os.PathLike) -> dict[str, str]:
    """``{relative path: sha256}`` from ``<bundled_dir>/SHA256SUMS``."""
    path = Path(bundled_dir) / CHECKSUMS
    if not path.is_file():
        raise DataValidationError(f"{path}: missing; bundled data must come with the SHA-256 of every file")
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataValidationError(f"{path}: line {number} is not '<sha256>  <path>': {line!r}")
        sums[os.path.normpath(name.strip())] = digest.lower()
    return sums


def verify_bundled_file(bundled_dir: str | os.PathLike, path: str | os.PathLike) -> None:
    """Raise a DataValidationError naming ``path`` and both hashes unless it matches SHA256SUMS."""
    relative = os.path.normpath(os.path.relpath(path, bundled_dir))
    expected = read_checksums(bundled_dir).get(relative)
    if expected is None:
        raise DataValidationError(f"{path}: not listed in {Path(bundled_dir) / CHECKSUMS}; add its SHA-256 "
                                  "there (sha256sum) to use it as bundled data")
    actual = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if actual != expected:
        raise DataValidationError(f"{path}: SHA-256 {actual} does not match {expected} listed in "
                                  f"{Path(bundled_dir) / CHECKSUMS}: the bundled file was changed")


def write_checksums(bundled_dir: str | os.PathLike) -> Path:
    """(Re)write ``<bundled_dir>/SHA256SUMS`` for every file below it, e.g. after adding your own data
    files to a copy of the bundled directory; returns the directory."""
    root = Path(bundled_dir)
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in (CHECKSUMS, "README.md")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  ./{path.relative_to(root).as_posix()}")
    (root / CHECKSUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


if __name__ == "__main__":
    import sys

    for directory in sys.argv[1:] or ["resources/data"]:
        if not Path(directory).is_dir():
            sys.exit(f"{directory}: no such directory (give the folder of your bundled data)")
        print(f"wrote {write_checksums(directory) / CHECKSUMS}")
