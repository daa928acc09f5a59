"""Deterministic archives of a staged tree: newc cpio for the initramfs, tar for `docker import`.

Written in Python rather than with cpio/tar so that ownership is root:root without running as root,
timestamps are fixed (same tree -> same bytes) and /dev/console can be added without mknod.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class Node:
    """A device node to add that the staging tree cannot hold without root."""

    path: str
    major: int
    minor: int
    mode: int = 0o600


def walk(root: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every entry under root, parents before children, sorted."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        rel = base.relative_to(root)
        if str(rel) != ".":
            yield str(rel), base
        for name in sorted(filenames):
            yield str(rel / name) if str(rel) != "." else name, base / name
        for name in list(dirnames):
            if (base / name).is_symlink():  # os.walk lists symlinks to dirs as dirs
                dirnames.remove(name)
                yield str(rel / name) if str(rel) != "." else name, base / name


def _cpio_entry(
    out: BinaryIO, ino: int, name: str, mode: int, data: bytes, rdev: tuple[int, int] = (0, 0), nlink: int = 1
) -> None:
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    out.write(header + encoded)
    out.write(b"\0" * (-(len(header) + len(encoded)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def write_cpio(root: Path, dest: Path, nodes: Sequence[Node] = ()) -> None:
    """An uncompressed newc archive (no decompression cost at boot under TCG)."""
    with dest.open("wb") as f:
        ino = 1
        for name, path in walk(root):
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                _cpio_entry(f, ino, name, stat.S_IFLNK | 0o777, os.readlink(path).encode())
            elif stat.S_ISDIR(st.st_mode):
                _cpio_entry(f, ino, name, stat.S_IFDIR | stat.S_IMODE(st.st_mode), b"", nlink=2)
            elif stat.S_ISREG(st.st_mode):
                _cpio_entry(f, ino, name, stat.S_IFREG | stat.S_IMODE(st.st_mode), path.read_bytes())
            ino += 1
        for node in nodes:
            _cpio_entry(f, ino, node.path, stat.S_IFCHR | node.mode, b"", rdev=(node.major, node.minor))
            ino += 1
        _cpio_entry(f, ino, "TRAILER!!!", 0, b"")


def write_tar(root: Path, dest: Path, exclude: tuple[str, ...] = ()) -> None:
    """A tar for `docker import`: root-owned, mtime 0, sorted; `exclude` drops top-level prefixes."""

    def norm(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if any(info.name == e or info.name.startswith(e + "/") for e in exclude):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        return info

    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, path in walk(root):
            info = tar.gettarinfo(str(path), arcname=name)
            kept = norm(info)
            if kept is None:
                continue
            if kept.isreg():
                with path.open("rb") as fh:
                    tar.addfile(kept, fh)
            else:
                tar.addfile(kept)


def write_overlay_initrd(base: Path, dest: Path, files: Sequence[tuple[str, int, bytes]]) -> None:
    """`base` followed by a second newc archive of `files` (name, mode, data).

    The kernel unpacks concatenated archives in order and a later file replaces an earlier one, so a
    per-instance file (the per-run authorized_keys) needs no rebuild of the image.
    """
    with dest.open("wb") as f:
        with base.open("rb") as src:
            while chunk := src.read(1 << 20):
                f.write(chunk)
        f.write(b"\0" * (-f.tell() % 4))
        ino = 1 << 20
        for name, mode, data in files:
            _cpio_entry(f, ino, name, mode, data, nlink=2 if stat.S_ISDIR(mode) else 1)
            ino += 1
        _cpio_entry(f, ino, "TRAILER!!!", 0, b"")
