"""Every compression a Debian or Ubuntu bzImage uses, on bzImage-like blobs built here: junk (the real
mode set-up code), a decoy stream that does not hold an ELF, the ELF's stream, a trailer (the kernel
appends the uncompressed size). Streams are made by the standard library or the tools set-up installs."""

from __future__ import annotations

import builtins
import bz2
import gzip
import lzma
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import import_or_unavailable, need_program

from vmlab.images import kernel
from vmlab.images.kernel import extract_vmlinux

# An ELF header's magic and then bytes no decompressor would invent.
FAKE_ELF = b"\x7fELF\x02\x01\x01" + os.urandom(4096) + bytes(range(256)) * 64
JUNK = b"MZ\xea\x07\xc0\x07" + bytes(range(200)) * 3 + b"HdrS"
TRAILER = len(FAKE_ELF).to_bytes(4, "little")


def _tool(argv: list[str]) -> Callable[[bytes], bytes]:
    def compress(data: bytes) -> bytes:
        need_program(argv[0], argv[0])  # xz, bzip2, lz4, lzop, zstd: each in the package of its name
        return subprocess.run(argv, input=data, capture_output=True, check=True).stdout

    return compress


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "xz": lambda d: lzma.compress(d, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32),
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    # The kernel pipes its payload through `zstd -22 --ultra` (no content size in the frame header) and
    # `lz4 -l` (the legacy frame); the same here, levels aside.
    "zstd": _tool(["zstd", "-q", "-c", "-"]),
    "lz4": _tool(["lz4", "-q", "-l", "-c"]),
}


@pytest.mark.parametrize("method", sorted(COMPRESSORS))
def test_each_method_is_found_after_junk_and_a_decoy(method: str) -> None:
    compress = COMPRESSORS[method]
    decoy = compress(b"not an ELF, just text " * 20)
    blob = JUNK + decoy + b"\x00" * 37 + compress(FAKE_ELF) + TRAILER
    assert extract_vmlinux(blob) == FAKE_ELF


def test_zstd_without_the_python_package_uses_the_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A venv made before zstandard joined the dependencies still extracts Debian 13's kernel."""
    real_import = builtins.__import__

    def no_zstandard(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "zstandard":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_zstandard)
    blob = JUNK + COMPRESSORS["zstd"](FAKE_ELF) + TRAILER
    assert extract_vmlinux(blob) == FAKE_ELF


def test_zstd_with_the_python_package() -> None:
    import_or_unavailable("zstandard")
    blob = JUNK + COMPRESSORS["zstd"](FAKE_ELF) + TRAILER
    assert extract_vmlinux(blob) == FAKE_ELF


def test_a_missing_tool_is_no_candidate_and_the_error_names_every_method(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob = JUNK + COMPRESSORS["lz4"](FAKE_ELF) + TRAILER
    monkeypatch.setattr(kernel.shutil, "which", lambda _name: None)
    with pytest.raises(kernel.BackendError, match="no xz, zstd, gzip, lz4, bzip2, lzma stream"):
        extract_vmlinux(blob)


def test_magic_without_a_stream_is_skipped() -> None:
    """Each magic followed by garbage, then the real stream: the garbage is passed over."""
    magics = b"".join(m for _n, m, _f in kernel.METHODS)
    blob = JUNK + magics + b"\x00garbage" * 8 + gzip.compress(FAKE_ELF) + TRAILER
    assert extract_vmlinux(blob) == FAKE_ELF


SETUP_DEBS = Path("/var/lib/vmlab/images/.debs")  # where `make setup` (as root) keeps them


def _real_kernels() -> list[Path]:
    """The host's own kernels, any named in VMLAB_KERNEL_IMAGES (e.g. a Debian 13 vmlinuz unpacked from
    its .deb with dpkg-deb -x), and the kernel packages the image cache downloaded (`make setup` builds
    the tiny image from one, so `make test` always has it): real bzImages, never committed."""
    from vmlab.paths import images_dir

    extra = [Path(p) for p in os.environ.get("VMLAB_KERNEL_IMAGES", "").split(":") if p]
    found = [p for p in sorted(Path("/boot").glob("vmlinuz-*")) if os.access(p, os.R_OK)]
    debs = sorted({*images_dir().glob(".debs/linux-image-*.deb"), *SETUP_DEBS.glob("linux-image-*.deb")})
    return [*found, *extra, *debs]


def _bzimage(path: Path, tmp: Path) -> bytes:
    """A bzImage itself, or the one in a kernel package (dpkg-deb, as the image build unpacks it)."""
    if path.suffix != ".deb":
        return path.read_bytes()
    subprocess.run(["dpkg-deb", "-x", str(path), str(tmp)], check=True, timeout=120)
    (image,) = (tmp / "boot").glob("vmlinuz-*")
    return image.read_bytes()


@pytest.mark.parametrize("image", _real_kernels() or [None], ids=str)
def test_real_kernel_images(image: Path | None, tmp_path: Path) -> None:
    if image is None:
        if os.environ.get("CI") == "true":
            pytest.fail("make setup builds the tiny image from a kernel package: none is in the cache")
        pytest.skip("no readable /boot/vmlinuz-*, no VMLAB_KERNEL_IMAGES and no cached kernel package")
    blob = _bzimage(image, tmp_path)
    vmlinux = extract_vmlinux(blob)
    assert vmlinux[:4] == b"\x7fELF"
    assert vmlinux[4] == 2  # ELFCLASS64: an x86-64 kernel
    assert len(vmlinux) > len(blob)  # it was compressed


def test_compressed_modules_are_stored_plain() -> None:
    """Debian 13's modules are .ko.xz: the initramfs gets the ELF object under the .ko name."""
    from vmlab.images.kernel import plain_module

    obj = FAKE_ELF[:2000]
    xz = lzma.compress(obj, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    assert plain_module("kernel/drivers/net/virtio_net.ko.xz", xz) == (
        "kernel/drivers/net/virtio_net.ko",
        obj,
    )
    assert plain_module("kernel/net/core/failover.ko.gz", gzip.compress(obj)) == (
        "kernel/net/core/failover.ko",
        obj,
    )
    assert plain_module("kernel/a.ko", obj) == ("kernel/a.ko", obj)
    with pytest.raises(kernel.BackendError, match=r"kernel module kernel/b\.ko\.xz"):
        plain_module("kernel/b.ko.xz", b"not xz")


def test_builtin_modules_need_no_loading() -> None:
    """Debian 13's 6.12 builds virtio_pci in (modules.builtin), 6.1 has it as a module."""
    from vmlab.images.kernel import module_load_order

    dep = (
        "kernel/drivers/net/virtio_net.ko.xz: kernel/net/core/failover.ko.xz\n"
        "kernel/net/core/failover.ko.xz:\n"
    )
    builtin = "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_pci.ko\n"
    order = module_load_order(dep, ["virtio_pci", "virtio_net"], builtin)
    assert order == ["kernel/net/core/failover.ko.xz", "kernel/drivers/net/virtio_net.ko.xz"]
    with pytest.raises(kernel.BackendError, match="virtio_pci"):
        module_load_order(dep, ["virtio_pci"])


def test_lz4_frame_ends_before_the_appended_size() -> None:
    """The kernel appends the uncompressed size after the stream; lz4 1.10 (Debian 13) would read it as
    a block and print nothing, so the tool gets the frame alone. Legacy frame by hand: magic, then
    blocks of (4-byte size, data)."""
    body = b"\x01\x02\x03"
    frame = kernel.LZ4_LEGACY_MAGIC + len(body).to_bytes(4, "little") + body
    assert kernel._lz4_legacy_end(frame + (20487).to_bytes(4, "little")) == len(frame)
    assert kernel._lz4_legacy_end(frame + b"\x00\x00\x00\x00" + b"x" * 64) == len(frame)
    two = frame + (2).to_bytes(4, "little") + b"ab"
    assert kernel._lz4_legacy_end(two + b"\xff\xff\xff\xff") == len(two)
