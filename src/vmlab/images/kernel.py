"""Turn a Debian kernel package into what a fast TCG boot wants.

The bzImage decompresses itself, which costs ~3 s under TCG (docs/host-facts.md); the Debian kernel has
CONFIG_PVH=y, so we decompress it once here and boot the ELF vmlinux directly.
"""

from __future__ import annotations

import bz2
import lzma
import shutil
import subprocess
import zlib
from collections.abc import Callable

from vmlab.errors import BackendError

ELF_MAGIC = b"\x7fELF"
# The methods a Debian or Ubuntu kernel compresses its bzImage payload with (CONFIG_KERNEL_*), by the
# magic that starts each stream: Debian 12 used xz, Debian 13 (6.12) and Ubuntu 24.04 use zstd, older
# Ubuntu kernels lz4 (the legacy frame `lz4 -l` writes), gzip is the kernel's default.
XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b\x08"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
LZ4_LEGACY_MAGIC = b"\x02\x21\x4c\x18"
BZIP2_MAGIC = b"BZh"
LZMA_MAGIC = b"\x5d\x00\x00"
# Enough output to see an ELF header; a candidate stream is only decompressed in full once it starts
# with one (a false magic inside other data then costs a few bytes, not a whole decompression). The
# whole-stream methods (zstd, the tools) ignore it.
PEEK = 64
TOOL_TIMEOUT_S = 120


class _NotThis(Exception):
    """The bytes at this offset are no stream of this method (or not an ELF)."""


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside a bzImage: the first stream of a known method that decompresses to an ELF."""
    for _name, magic, decompress in METHODS:
        start = 0
        while (off := bzimage.find(magic, start)) >= 0:
            start = off + 1
            try:
                peek = decompress(bzimage[off:], PEEK)
                if not peek.startswith(ELF_MAGIC):
                    continue
                # The tools (and zstd) give the whole stream at once: no second pass.
                data = peek if len(peek) > PEEK else decompress(bzimage[off:], None)
            except _NotThis:
                continue
            if data.startswith(ELF_MAGIC):
                return data
    names = ", ".join(m[0] for m in METHODS)
    raise BackendError(
        f"no {names} stream holding an ELF vmlinux found in the kernel image",
        hint="a kernel compressed another way: name its method in an issue (vmlab doctor lists the host)",
    )


def _xz(data: bytes, limit: int | None) -> bytes:
    try:
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data, max_length=limit or -1)
    except (lzma.LZMAError, EOFError) as e:
        raise _NotThis from e


def _lzma(data: bytes, limit: int | None) -> bytes:
    try:
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data, max_length=limit or -1)
    except (lzma.LZMAError, EOFError) as e:
        raise _NotThis from e


def _gzip(data: bytes, limit: int | None) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, limit or 0)
    except (zlib.error, OSError, EOFError) as e:
        raise _NotThis from e


def _bzip2(data: bytes, limit: int | None) -> bytes:
    try:
        return bz2.BZ2Decompressor().decompress(data, max_length=limit or -1)
    except (OSError, EOFError, ValueError) as e:
        raise _NotThis from e


def _zstd(data: bytes, limit: int | None) -> bytes:
    """The `zstandard` package when installed (a dependency of vmlab), else the `zstd` tool. The whole
    frame either way: the kernel writes it without a content size, and a false 4-byte magic is rare."""
    try:
        import zstandard  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return _tool(["zstd", "-dcq"], data)
    try:
        out: bytes = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except zstandard.ZstdError as e:
        raise _NotThis from e
    return out


def _lz4(data: bytes, limit: int | None) -> bytes:
    """The kernel's legacy lz4 frame: the `lz4` tool reads it (the package is in set-up's list), given
    the frame alone: lz4 1.10 (Debian 13) reads the 4-byte size the kernel appends as one more block,
    fails, and writes nothing at all (1.9 wrote what it had decoded)."""
    return _tool(["lz4", "-dcq"], data[: _lz4_legacy_end(data)])


# A legacy frame holds blocks of 8 MiB uncompressed, each a 4-byte little-endian compressed size and
# the data; LZ4_compressBound(8 MiB) bounds a block's size.
LZ4_LEGACY_MAX_BLOCK = 8 * 1024 * 1024 + 8 * 1024 * 1024 // 255 + 16


def _lz4_legacy_end(data: bytes) -> int:
    """Where the legacy frame starting at data[0] ends: after the last block whose size is plausible and
    whose data is all there (the kernel's appended size is not: it exceeds what is left or the bound)."""
    pos = len(LZ4_LEGACY_MAGIC)
    while pos + 4 <= len(data):
        if data[pos : pos + 4] == LZ4_LEGACY_MAGIC:  # a concatenated frame continues the stream
            pos += 4
            continue
        size = int.from_bytes(data[pos : pos + 4], "little")
        if size == 0 or size > LZ4_LEGACY_MAX_BLOCK or pos + 4 + size > len(data):
            break
        pos += 4 + size
    return pos


def _tool(argv: list[str], data: bytes) -> bytes:
    """Decompress with a command-line tool; trailing bytes after the stream make it exit non-zero, so
    what it wrote counts, and the caller checks it for an ELF header."""
    if shutil.which(argv[0]) is None:
        raise _NotThis  # no tool, no candidate: the error names every method tried
    try:
        proc = subprocess.run(argv, input=data, capture_output=True, timeout=TOOL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise _NotThis from e
    if not proc.stdout:
        raise _NotThis
    return proc.stdout


METHODS: tuple[tuple[str, bytes, Callable[[bytes, int | None], bytes]], ...] = (
    ("xz", XZ_MAGIC, _xz),
    ("zstd", ZSTD_MAGIC, _zstd),
    ("gzip", GZIP_MAGIC, _gzip),
    ("lz4", LZ4_LEGACY_MAGIC, _lz4),
    ("bzip2", BZIP2_MAGIC, _bzip2),
    ("lzma", LZMA_MAGIC, _lzma),
)


def has_pvh_note(vmlinux: bytes) -> bool:
    """Xen's PVH entry note (type 18, owner "Xen") is what lets QEMU boot the ELF directly."""
    return b"Xen\x00" in vmlinux and vmlinux[:4] == ELF_MAGIC


def module_load_order(modules_dep: str, wanted: list[str], modules_builtin: str = "") -> list[str]:
    """Relative paths of `wanted` modules and their dependencies, dependencies first.

    `modules_dep` is the text of modules.dep: "path.ko: dep1.ko dep2.ko". Names compare with '-' and '_'
    equal, as the kernel does. A wanted module listed in `modules_builtin` (modules.builtin) is part of
    the kernel already and needs no loading: Debian 13's 6.12 builds virtio_pci in, Debian 12's 6.1
    has it as a module.
    """
    builtin = {_modname(line.strip()) for line in modules_builtin.splitlines() if line.strip()}
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        path = path.strip()
        deps[path] = rest.split()
        by_name[_modname(path)] = path
    order: list[str] = []
    seen: set[str] = set()

    def visit(path: str, stack: tuple[str, ...]) -> None:
        if path in seen:
            return
        if path in stack:
            raise BackendError(f"module dependency cycle through {path}")
        for dep in deps.get(path, []):
            visit(dep, (*stack, path))
        seen.add(path)
        order.append(path)

    for name in wanted:
        found = by_name.get(_modname(name))
        if found is None and _modname(name) in builtin:
            continue
        if found is None:
            raise BackendError(f"kernel module {name} is not in this kernel's modules.dep")
        visit(found, ())
    return order


def plain_module(rel: str, data: bytes) -> tuple[str, bytes]:
    """A kernel module as insmod in the guest loads it whatever busybox was built with: Debian 13 ships
    modules as .ko.xz (Ubuntu as .ko.zst), Debian 12 as .ko. Decompressed once here, at build time."""
    for suffix, decompress in ((".ko.xz", _xz), (".ko.zst", _zstd), (".ko.gz", _gzip)):
        if rel.endswith(suffix):
            try:
                plain = decompress(data, None)
            except _NotThis as e:
                raise BackendError(f"kernel module {rel} does not decompress") from e
            if not plain.startswith(ELF_MAGIC):
                raise BackendError(f"kernel module {rel} is no ELF object after decompression")
            return rel[: -len(suffix)] + ".ko", plain
    return rel, data


def _modname(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")
