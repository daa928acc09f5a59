"""The tiny image built for real from Debian packages: cache entry, manifest, keys, docker import."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from vmlab.errors import UsageError
from vmlab.images import build_image, get_image, verify_entry
from vmlab.images.access import qemu_gid
from vmlab.spec.digest import sha256_file

pytestmark = pytest.mark.slow


def test_entry_holds_verified_outputs(tiny_image: Any) -> None:
    entry = tiny_image.path
    assert entry.name == tiny_image.digest and len(tiny_image.digest) == 64
    manifest, problems = verify_entry(entry)
    assert problems == [] and manifest is not None
    assert set(manifest.outputs) == {"vmlinux", "initrd.cpio", "rootfs.tar", "id_ed25519", "id_ed25519.pub"}
    for name, digest in manifest.outputs.items():
        assert sha256_file(entry / name) == digest
    assert tiny_image.kernel.read_bytes()[:4] == b"\x7fELF"  # decompressed once: PVH boot
    assert tiny_image.initrd.read_bytes()[:6] == b"070701"  # uncompressed newc
    assert (
        manifest.kernel_package.startswith("linux-image-")
        and manifest.kernel_release in manifest.kernel_package
    )
    assert set(manifest.packages) >= {"busybox-static", "dropbear-bin"}
    assert {m.rsplit("/", 1)[-1].replace("-", "_") for m in manifest.modules} >= {
        "virtio_net.ko",
        "virtio_rng.ko",
        "virtio_balloon.ko",  # system-vm's balloon task shrinks and grows the guest
    }


def test_keys_are_private_and_host_key_pinned(tiny_image: Any) -> None:
    assert stat.S_IMODE(tiny_image.client_key.stat().st_mode) == 0o600
    assert tiny_image.host_public_key.startswith("ssh-ed25519 ")
    # QEMU (user libvirt-qemu) must read kernel and initrd from the cache; the initrd and the
    # container rootfs hold the guest's host key, so only QEMU's group may read those
    assert tiny_image.kernel.stat().st_mode & stat.S_IROTH
    for f in (tiny_image.initrd, tiny_image.rootfs_tar):
        st = f.stat()
        assert not st.st_mode & stat.S_IROTH
        if os.geteuid() == 0 and qemu_gid() is not None:
            assert st.st_gid == qemu_gid() and st.st_mode & stat.S_IRGRP


def test_second_build_is_a_cache_hit(tiny_image: Any) -> None:
    before = tiny_image.kernel.stat().st_mtime_ns
    messages: list[str] = []
    again = build_image("tiny", progress=messages.append)
    assert again.digest == tiny_image.digest
    assert any("cache hit" in m for m in messages)
    assert not any(m.startswith("extract") for m in messages)
    assert again.kernel.stat().st_mtime_ns == before


@pytest.mark.docker
def test_docker_image_is_tagged_and_labelled(tiny_image: Any, docker_available: None) -> None:
    from vmlab.images.docker_image import docker_client

    client = docker_client()
    try:
        img = client.images.get(tiny_image.docker_tag)
        assert tiny_image.docker_tag == f"vmlab/tiny:{tiny_image.digest[:12]}"
        assert img.labels["vmlab.digest"] == tiny_image.digest
        assert img.labels["vmlab.image"] == "tiny"
    finally:
        client.close()


def test_get_image_errors_are_clear(test_home: Path) -> None:
    with pytest.raises(UsageError, match="unknown image 'nope'"):
        get_image("nope")


def test_corrupted_entry_is_detected_and_rebuilt(
    tiny_image: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a private home (sharing the downloaded .debs) so the session's image stays untouched."""
    home = Path(tmp_path_factory.mktemp("corrupt-home"))
    os.chmod(home, 0o755)
    (home / "images").mkdir()
    shutil.copytree(tiny_image.path.parent.parent / ".debs", home / "images" / ".debs")
    monkeypatch.setenv("VMLAB_HOME", str(home))
    first = build_image("tiny", docker=False, progress=lambda m: print(m, file=sys.stderr))
    with first.initrd.open("r+b") as f:
        f.seek(1000)
        f.write(b"corrupted")
    with pytest.raises(UsageError, match="corrupted"):
        get_image("tiny")
    assert get_image("tiny", verify="quick").digest == first.digest  # same size: only sha256 sees it
    messages: list[str] = []
    second = build_image("tiny", docker=False, progress=messages.append)
    assert any("rebuilding" in m and "initrd.cpio" in m for m in messages)
    assert second.digest == first.digest
    assert verify_entry(second.path)[1] == []
    assert get_image("tiny").digest == first.digest


def test_image_cli_lists_and_builds_from_cache(tiny_image: Any) -> None:
    import json

    from typer.testing import CliRunner

    from vmlab.cli.main import app

    r = CliRunner().invoke(app, ["image", "ls", "--json"])
    assert r.exit_code == 0, r.output
    row = next(x for x in json.loads(r.stdout) if x["digest"] == tiny_image.digest)
    assert row["state"] == "ok" and row["docker_tag"] == tiny_image.docker_tag
    r = CliRunner().invoke(app, ["image", "build", "tiny", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["digest"] == tiny_image.digest
    r = CliRunner().invoke(app, ["image", "rm", "tiny", "--digest", "0000"])
    assert r.exit_code == 2 and "no image" in r.output
