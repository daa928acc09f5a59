"""Turn a Debian kernel package into what a fast TCG boot wants.

The bzImage decompresses itself, which costs ~3 s under TCG (docs/host-facts.md); the Debian kernel has
CONFIG_PVH=y, so we decompress it once here and boot the ELF vmlinux directly.
"""

from __future__ import annotations

import lzma
import zlib

from vmlab.errors import BackendError

XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b\x08"
ELF_MAGIC = b"\x7fELF"


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside a bzImage: the first xz (or gzip) stream that decompresses to an ELF."""
    for magic, decompress in ((XZ_MAGIC, _xz), (GZIP_MAGIC, _gzip)):
        start = 0
        while (off := bzimage.find(magic, start)) >= 0:
            start = off + 1
            try:
                data = decompress(bzimage[off:])
            except (lzma.LZMAError, OSError, EOFError, zlib.error):
                continue
            if data.startswith(ELF_MAGIC):
                return data
    raise BackendError("no xz or gzip stream holding an ELF vmlinux found in the kernel image")


def _xz(data: bytes) -> bytes:
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)


def _gzip(data: bytes) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    return d.decompress(data)


def has_pvh_note(vmlinux: bytes) -> bool:
    """Xen's PVH entry note (type 18, owner "Xen") is what lets QEMU boot the ELF directly."""
    return b"Xen\x00" in vmlinux and vmlinux[:4] == ELF_MAGIC


def module_load_order(modules_dep: str, wanted: list[str]) -> list[str]:
    """Relative paths of `wanted` modules and their dependencies, dependencies first.

    `modules_dep` is the text of modules.dep: "path.ko: dep1.ko dep2.ko". Names compare with '-' and '_'
    equal, as the kernel does.
    """
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
        if found is None:
            raise BackendError(f"kernel module {name} is not in this kernel's modules.dep")
        visit(found, ())
    return order


def _modname(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")
