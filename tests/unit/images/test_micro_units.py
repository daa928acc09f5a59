"""The micro builder's pieces that need no kernel build: the config fragment, the kernel cache, the
make runner's progress, failure and interrupt handling (with real processes), and firmware choice."""

from __future__ import annotations

import hashlib
import json
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vmlab.backends.libvirt.domain_xml import DomainModel, resolve_firmware
from vmlab.errors import BackendError, UsageError
from vmlab.images import micro
from vmlab.images.recipe import load_recipe, recipes_root


def assert_gone(pid: int, after: str) -> None:
    """The build's grandchild must be reaped within ~2.5 s of `after`."""
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"grandchild {pid} survived {after}")


def test_fragment_parsing_keeps_values_and_not_set_lines() -> None:
    text = '# comment\nCONFIG_A=y\nCONFIG_B="x y"\n# CONFIG_C is not set\n\nCONFIG_N=8\n'
    assert micro.parse_fragment(text) == {
        "CONFIG_A": "y",
        "CONFIG_B": '"x y"',
        "CONFIG_C": "n",
        "CONFIG_N": "8",
    }
    with pytest.raises(UsageError, match="cannot parse"):
        micro.parse_fragment("PVH=y\n")


def test_dropped_options_are_named() -> None:
    wanted = {"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_C": "n", "CONFIG_N": "8"}
    config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_N=8\n"
    assert micro.config_mismatches(wanted, config) == ["CONFIG_B=y (got n)", "CONFIG_C=n (got y)"]
    assert micro.config_mismatches({"CONFIG_A": "y"}, "CONFIG_A=y\n") == []


def test_the_shipped_fragment_asks_for_what_the_guest_needs() -> None:
    wanted = micro.parse_fragment((recipes_root() / "micro" / "kernel.config").read_text())
    for opt in (
        "CONFIG_PVH",
        "CONFIG_VIRTIO_PCI",
        "CONFIG_VIRTIO_NET",
        "CONFIG_HW_RANDOM_VIRTIO",
        "CONFIG_SERIAL_8250_CONSOLE",
        "CONFIG_BLK_DEV_INITRD",
        "CONFIG_DEVTMPFS",
        "CONFIG_UNIX",
        "CONFIG_INET",
        "CONFIG_UNIX98_PTYS",
        "CONFIG_TMPFS",
        "CONFIG_PROC_FS",
        "CONFIG_SYSFS",
        "CONFIG_BINFMT_SCRIPT",
    ):
        assert wanted.get(opt) == "y", opt
    assert "CONFIG_MODULES" not in wanted  # allnoconfig: no modules, everything built in


def test_micro_recipe_shares_tinys_user_space() -> None:
    recipe = load_recipe("micro")
    assert micro.userspace_recipe(recipe).name == "tiny"
    assert micro.config_fragment(recipe).name == "kernel.config"
    assert recipe.section("image")["firmware"] == "qboot"


def test_kernel_key_follows_config_and_toolchain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vmlab.images.debs.candidate_version", lambda _p: "6.1.1-1")  # no apt needed
    d = tmp_path / "r"
    d.mkdir()
    (d / "recipe.toml").write_text("")
    (d / "kernel.config").write_text("CONFIG_A=y\n")
    from vmlab.images.recipe import Recipe

    recipe = Recipe("micro", d, {})
    k1 = micro.kernel_key(recipe, "gcc 12")
    assert k1 == micro.kernel_key(recipe, "gcc 12")
    assert k1 != micro.kernel_key(recipe, "gcc 13")
    (d / "kernel.config").write_text("CONFIG_A=y\nCONFIG_B=y\n")
    assert micro.kernel_key(recipe, "gcc 12") != k1


def test_kernel_cache_rejects_a_corrupted_vmlinux(tmp_path: Path) -> None:
    d = micro.kernels_dir(tmp_path) / "k1"
    d.mkdir(parents=True)
    (d / "vmlinux").write_bytes(b"\x7fELF kernel")
    facts = {"sha256": hashlib.sha256(b"\x7fELF kernel").hexdigest(), "release": "6.1-micro"}
    (d / "kernel.json").write_text(json.dumps(facts))
    assert micro.cached_kernel(tmp_path, "k1") == d
    assert micro.cached_kernel(tmp_path, "other") is None
    (d / "vmlinux").write_bytes(b"\x7fELF kerneL")
    assert micro.cached_kernel(tmp_path, "k1") is None


def test_make_runner_counts_steps_and_reports_failures(monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setattr(micro, "PROGRESS_EVERY_S", 0.0)
    seen: list[str] = []
    script = 'echo "  CC      a.o"; echo "  CC      b.o"; echo "  LD      vmlinux"'
    micro._stream_make(["sh", "-c", script], seen.append, time.monotonic())
    assert seen and seen[-1].startswith("kernel build: 3 steps done")
    with pytest.raises(BackendError, match=r"exit 2\): x.c:1: error: boom"):
        micro._stream_make(
            ["sh", "-c", 'echo "  CC      x.o"; echo "x.c:1: error: boom"; exit 2'],
            seen.append,
            time.monotonic(),
        )


def test_interrupt_kills_the_whole_build_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C during the build leaves no compiler running (the grandchild dies with the group)."""

    monkeypatch.setattr(micro, "PROGRESS_EVERY_S", 0.0)
    pidfile = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pidfile}; echo '  CC      a.o'; wait"

    def interrupt(_msg: str) -> None:
        if pidfile.exists():  # the grandchild runs: interrupt now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        micro._stream_make(["sh", "-c", script], interrupt, time.monotonic())
    assert_gone(int(pidfile.read_text()), "the interrupted build")


def test_missing_build_tools_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from vmlab.errors import NotAvailable

    monkeypatch.setattr("shutil.which", lambda t: None if t == "flex" else "/usr/bin/" + t)
    with pytest.raises(NotAvailable, match="needs flex") as e:
        micro.check_build_tools()
    assert e.value.hint and "flex" in e.value.hint


def test_firmware_resolution_and_loader_xml() -> None:
    assert resolve_firmware("") == (None, "seabios (QEMU default)")
    assert resolve_firmware("seabios")[0] is None
    with pytest.raises(ValueError, match="unknown firmware"):
        resolve_firmware("ovmf")
    rom, used = resolve_firmware("qboot")
    if rom is None:
        assert used.startswith("seabios") and "no qboot ROM" in used
    else:
        assert rom.is_file() and used.startswith("qboot")
    model = DomainModel(
        name="vmlab-r-g1",
        domain_type="qemu",
        memory_mib=256,
        vcpus=1,
        kernel=Path("/cache/vmlinux"),
        initrd=Path("/cache/initrd.cpio"),
        cmdline="console=ttyS0",
        serial_log=Path("/runs/r/g1/console.log"),
        loader=Path("/usr/share/qemu/qboot.rom"),
    )
    loader = ET.fromstring(model.to_xml()).find("os/loader")
    assert loader is not None and loader.get("type") == "rom" and loader.text == "/usr/share/qemu/qboot.rom"
    model.loader = None
    assert ET.fromstring(model.to_xml()).find("os/loader") is None


def test_libvirt_options_reject_unknown_firmware() -> None:
    from vmlab.backends.libvirt.options import LibvirtOptions

    assert LibvirtOptions(firmware="qboot").firmware == "qboot"
    with pytest.raises(UsageError, match="unknown firmware 'bios'"):
        LibvirtOptions(firmware="bios")


def test_tcg_only_kernel_args_are_added_under_tcg_only() -> None:
    from vmlab.backends.libvirt.backend import compose_cmdline

    base, tcg = "console=ttyS0 quiet", "nolapic_timer no_timer_check"
    assert compose_cmdline(base, tcg, "tcg", "") == "console=ttyS0 quiet nolapic_timer no_timer_check"
    assert compose_cmdline(base, tcg, "kvm", "loglevel=7") == "console=ttyS0 quiet loglevel=7"
    assert compose_cmdline(base, "", "tcg", "x=1") == "console=ttyS0 quiet x=1"


def test_sigterm_during_the_build_exits_143_and_kills_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    monkeypatch.setattr(micro, "PROGRESS_EVERY_S", 0.0)
    pidfile = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pidfile}; echo '  CC      a.o'; wait"
    before = signal.getsignal(signal.SIGTERM)

    def terminate(_msg: str) -> None:
        if pidfile.exists():
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(SystemExit) as e:
        micro._stream_make(["sh", "-c", script], terminate, time.monotonic())
    assert e.value.code == 143
    assert signal.getsignal(signal.SIGTERM) == before
    assert_gone(int(pidfile.read_text()), "SIGTERM")


def test_kernel_source_follows_the_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipe names the meta package; apt-cache depends (captured on Debian 13) gives the version."""
    from vmlab.images import debs, micro
    from vmlab.images.recipe import load_recipe

    seen: list[list[str]] = []

    def fake_run(argv: list[str], **_kw: object) -> str:
        seen.append(argv)
        return "linux-source\n  Depends: linux-source-6.12\n"

    monkeypatch.setattr(debs, "run", fake_run)
    assert micro.source_package(load_recipe("micro")) == "linux-source-6.12"
    assert seen == [["apt-cache", "depends", "linux-source"]]
