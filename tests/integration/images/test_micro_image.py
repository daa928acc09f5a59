"""The micro image for real: a kernel built from the release's linux-source with the minimal config,
tiny's user space, a guest that boots under libvirt with qboot and answers over SSH.

The kernel takes minutes to build on 2 cores, so these tests run only when it is cached in the test
home (then the image itself builds in seconds) or when VMLAB_BUILD_MICRO=1 asks for the build;
otherwise they skip with that reason. The default test run never compiles a kernel.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import unavailable

from vmlab.images import build_image
from vmlab.images.kernel import has_pvh_note
from vmlab.images.recipe import load_recipe, recipes_root

pytestmark = pytest.mark.slow


def _progress(m: str) -> None:
    print(f"[micro image] {m}", file=sys.stderr)


@pytest.fixture(scope="module")
def micro_image(test_home: Path) -> Any:
    from vmlab.errors import NotAvailable
    from vmlab.images import micro
    from vmlab.paths import images_dir

    try:
        key = micro.kernel_key(load_recipe("micro"), micro.toolchain())
    except NotAvailable as e:
        unavailable("the micro kernel's build", e.one_line())  # make test sets its toolchain up
    if micro.cached_kernel(images_dir(), key) is None and os.environ.get("VMLAB_BUILD_MICRO") != "1":
        pytest.skip(
            f"micro kernel not cached in {images_dir()} (a build takes minutes); "
            "set VMLAB_BUILD_MICRO=1 to build it"
        )
    return build_image("micro", progress=_progress)


def test_entry_kernel_is_the_minimal_built_in_one(micro_image: Any) -> None:
    from vmlab.images import micro
    from vmlab.paths import images_dir

    m = micro_image.manifest
    assert set(m.outputs) == {"vmlinux", "initrd.cpio", "rootfs.tar", "id_ed25519", "id_ed25519.pub"}
    assert m.kernel_release.endswith("-vmlab-micro")
    assert re.match(r"linux-source-\d+\.\d+=", m.kernel_package)  # the release's (6.1 on Debian 12)
    assert m.modules == [] and m.firmware == "qboot" and "nolapic_timer" in m.cmdline_tcg
    assert has_pvh_note(micro_image.kernel.read_bytes())
    kdir = micro.kernels_dir(images_dir()) / str(m.inputs["kernel_key"])
    config = (kdir / "config").read_text()
    fragment = micro.parse_fragment((recipes_root() / "micro" / "kernel.config").read_text())
    assert micro.config_mismatches(fragment, config) == []
    assert "# CONFIG_MODULES is not set" in config


def test_user_space_is_tinys(micro_image: Any, tiny_image: Any) -> None:
    """Same busybox, dropbear and /init: the guest and the container still compare fairly."""

    def members(path: Path) -> dict[str, bytes]:
        with tarfile.open(path) as tar:
            out = {}
            for info in tar.getmembers():
                f = tar.extractfile(info) if info.isreg() else None
                out[info.name] = f.read() if f is not None else info.linkname.encode()
            return out

    a, b = members(micro_image.rootfs_tar), members(tiny_image.rootfs_tar)
    assert set(a) == set(b)
    per_image = {"etc/hostname", "etc/vmlab/release", "etc/dropbear/dropbear_ed25519_host_key"}
    per_image.add("root/.ssh/authorized_keys")
    assert [n for n in a if a[n] != b[n] and n not in per_image] == []
    assert a["etc/hostname"] == b"vmlab-micro\n"


def test_changing_init_reuses_the_cached_kernel(
    micro_image: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipes = tmp_path / "vm-images"
    shutil.copytree(recipes_root(), recipes)
    with (recipes / "tiny" / "init").open("a") as f:
        f.write("# an edit\n")
    monkeypatch.setenv("VMLAB_IMAGES_RECIPES", str(recipes))
    messages: list[str] = []
    other = build_image("micro", progress=messages.append, docker=False)
    try:
        assert other.digest != micro_image.digest  # the init is an input of the image...
        assert any(m.startswith("kernel cache hit") for m in messages)  # ...not of the kernel
        assert not any(m.startswith("compile") for m in messages)
        assert other.kernel.read_bytes() == micro_image.kernel.read_bytes()
    finally:
        shutil.rmtree(other.path)


@pytest.fixture(scope="module")
def micro_guest(libvirt_available: str, micro_image: Any) -> Iterator[Any]:
    from vmlab.backends import get_backend
    from vmlab.backends.base import InstanceSpec
    from vmlab.paths import new_run_id

    backend = get_backend("vm")
    inst = backend.create(InstanceSpec(name="micro", run_id=new_run_id(), image="micro", lab="tests"))
    try:
        inst.start()
        inst.wait_ready()
        yield inst
    except BaseException:
        print("\n".join(inst.console_tail(60)), file=sys.stderr)
        raise
    finally:
        inst.destroy()
        backend.close()


@pytest.mark.libvirt
def test_micro_guest_boots_with_qboot_and_answers(micro_guest: Any) -> None:
    order = ["create_called", "process_running", "serial_marker", "ssh_banner", "first_command"]
    stamps = [micro_guest.ladder[s] for s in order]
    assert stamps == sorted(stamps)
    assert micro_guest.meta["firmware"].startswith("qboot")
    assert micro_guest.guest_uptime_s is not None and micro_guest.guest_uptime_s > 0
    out = micro_guest.exec(["/bin/sh", "-c", "uname -r; hostname; cat /proc/cmdline"]).check().stdout
    release, hostname, cmdline = out.splitlines()
    assert release.endswith("-vmlab-micro") and hostname == "vmlab-micro"
    if micro_guest.accel == "tcg":
        assert "nolapic_timer" in cmdline.split()
    else:
        assert "nolapic_timer" not in cmdline.split()


@pytest.mark.libvirt
def test_micro_guest_has_network_rng_and_ptys(micro_guest: Any) -> None:
    script = "ip -4 addr show eth0; cat /sys/class/misc/hw_random/rng_current; ls /dev/pts; mount"
    out = micro_guest.exec(["/bin/sh", "-c", script]).check().stdout
    assert "10.0.2.15/24" in out
    assert "virtio_rng" in out  # the host seeds the guest CRNG: no entropy wait at the first SSH login
    for fs in ("proc", "sysfs", "devtmpfs", "devpts", "tmpfs"):
        assert f" type {fs} " in out, fs
    assert not [line for line in micro_guest.console_tail(200) if "vmlab-init:" in line]
