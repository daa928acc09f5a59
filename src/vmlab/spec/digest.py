"""The one digest of a file and of a folder, wherever vmlab records or compares one: inputs and
artifacts in a report, the image cache, a re-run's hand-in, a kernel uploaded to a libvirt host."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks (kernels and disks are large)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_files(root: Path) -> list[Path]:
    """The regular files under `root`, in the order a folder's digest takes them."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def sha256_tree(root: Path, files: Iterable[Path] | None = None) -> str:
    """A folder's digest: for each file (default: every regular file, sorted), its path relative to
    `root`, a NUL, its sha256 and a newline, hashed together; a renamed or changed file changes it."""
    h = hashlib.sha256()
    for p in tree_files(root) if files is None else files:
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()
