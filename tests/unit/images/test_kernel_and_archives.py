"""Kernel extraction, module ordering and the deterministic archives, on small real inputs."""

from __future__ import annotations

import lzma
import os
import stat
import tarfile
from pathlib import Path

import pytest

from vmlab.errors import BackendError
from vmlab.images.archive import Node, write_cpio, write_overlay_initrd, write_tar
from vmlab.images.kernel import extract_vmlinux, module_load_order

FAKE_ELF = b"\x7fELF" + bytes(range(256)) * 40


def test_vmlinux_is_found_after_a_decoy_stream() -> None:
    decoy = lzma.compress(b"not an elf", format=lzma.FORMAT_XZ)
    bz = b"MZ setup code" + decoy + b"\x00" * 64 + lzma.compress(FAKE_ELF, format=lzma.FORMAT_XZ) + b"trailer"
    assert extract_vmlinux(bz) == FAKE_ELF


def test_gzip_kernels_work_too() -> None:
    import gzip

    assert extract_vmlinux(b"setup" + gzip.compress(FAKE_ELF) + b"\x00" * 8) == FAKE_ELF


def test_no_kernel_stream_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="no xz, zstd, gzip, lz4, bzip2, lzma stream"):
        extract_vmlinux(b"\xfd7zXZ\x00 broken" + b"\x00" * 100)


MODULES_DEP = """\
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
"""  # noqa: E501


def test_modules_load_dependencies_first_once_each() -> None:
    order = [p.rsplit("/", 1)[-1] for p in module_load_order(MODULES_DEP, ["virtio_pci", "virtio-net"])]
    assert len(order) == len(set(order)) == 8
    pos = {m: i for i, m in enumerate(order)}
    assert pos["virtio_ring.ko"] < pos["virtio.ko"] < pos["virtio_pci.ko"] < pos["virtio_net.ko"]
    assert pos["failover.ko"] < pos["net_failover.ko"] < pos["virtio_net.ko"]
    assert order[-1] == "virtio_net.ko"


def test_unknown_module_is_named() -> None:
    with pytest.raises(BackendError, match="e1000"):
        module_load_order(MODULES_DEP, ["e1000"])


def _tree(root: Path) -> None:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(b"#!fake\n")
    os.chmod(root / "bin" / "busybox", 0o755)
    (root / "bin" / "sh").symlink_to("/bin/busybox")
    (root / "init").write_text("#!/bin/sh\n")
    os.chmod(root / "init", 0o755)


def _read_newc(data: bytes, off: int = 0) -> dict[str, tuple[int, bytes, int]]:
    """name -> (mode, data, rdevmajor): a minimal reader to check what the kernel will unpack."""
    return _read_newc_at(data, off)[0]


def _read_newc_at(data: bytes, off: int) -> tuple[dict[str, tuple[int, bytes, int]], int]:
    out: dict[str, tuple[int, bytes, int]] = {}
    while True:
        assert data[off : off + 6] == b"070701"
        fields = [int(data[off + 6 + 8 * i : off + 14 + 8 * i], 16) for i in range(13)]
        mode, filesize, rdevmajor, namesize = fields[1], fields[6], fields[9], fields[11]
        name_start = off + 110
        name = data[name_start : name_start + namesize - 1].decode()
        body = name_start + namesize
        body += -body % 4
        content = data[body : body + filesize]
        off = body + filesize
        off += -off % 4
        if name == "TRAILER!!!":
            return out, off
        out[name] = (mode, content, rdevmajor)


def test_cpio_is_newc_with_modes_links_and_nodes(tmp_path: Path) -> None:
    _tree(tmp_path / "root")
    dest = tmp_path / "initrd.cpio"
    write_cpio(tmp_path / "root", dest, nodes=[Node("dev/console", 5, 1)])
    entries = _read_newc(dest.read_bytes())
    assert stat.S_ISDIR(entries["bin"][0])
    assert entries["bin/busybox"][1] == b"#!fake\n" and stat.S_IMODE(entries["bin/busybox"][0]) == 0o755
    assert stat.S_ISLNK(entries["bin/sh"][0]) and entries["bin/sh"][1] == b"/bin/busybox"
    assert stat.S_ISCHR(entries["dev/console"][0]) and entries["dev/console"][2] == 5
    assert list(entries).index("bin") < list(entries).index("bin/busybox")


def test_archives_are_deterministic_and_root_owned(tmp_path: Path) -> None:
    _tree(tmp_path / "root")
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    write_tar(tmp_path / "root", a, exclude=("init",))
    os.utime(tmp_path / "root" / "bin" / "busybox", (1, 1))
    write_tar(tmp_path / "root", b, exclude=("init",))
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        names = tar.getnames()
        assert "init" not in names and "bin/busybox" in names
        assert all(m.uid == 0 and m.gid == 0 and m.mtime == 0 for m in tar.getmembers())


def test_overlay_archive_follows_the_base_and_replaces_a_file(tmp_path: Path) -> None:
    _tree(tmp_path / "root")
    base = tmp_path / "base.cpio"
    write_cpio(tmp_path / "root", base)
    dest = tmp_path / "run.cpio"
    key = (stat.S_IFREG | 0o600, b"ssh-ed25519 AAAA run\n")
    write_overlay_initrd(base, dest, [("root/.ssh/authorized_keys", key[0], key[1])])
    data = dest.read_bytes()
    first, end = _read_newc_at(data, 0)
    assert "init" in first and data[: len(base.read_bytes())] == base.read_bytes()
    second, _ = _read_newc_at(data, end + (-end % 4))
    assert second == {"root/.ssh/authorized_keys": (key[0], key[1], 0)}
