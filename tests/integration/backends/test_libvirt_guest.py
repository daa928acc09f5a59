"""The tiny guest under libvirt for real: ladder, SSH exec, stats, monitor, failure paths."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from vmlab.backends.base import VM_STAGES, InstanceSpec
from vmlab.backends.libvirt_backend import GuestFailed, GuestNotReady
from vmlab.errors import BackendError, UsageError
from vmlab.host.cpu import full_guest_accel, hw_virt

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]


def test_ladder_has_every_stage_in_order(shared_guest: Any) -> None:
    assert tuple(shared_guest.ladder) == VM_STAGES
    stamps = list(shared_guest.ladder.values())
    assert stamps == sorted(stamps)
    assert shared_guest.guest_uptime_s is not None and shared_guest.guest_uptime_s > 0
    assert shared_guest.ssh_banner.startswith("SSH-2.0-dropbear")


def test_accel_follows_the_host(shared_guest: Any) -> None:
    accel, reason = full_guest_accel("auto")
    assert shared_guest.accel == accel
    assert shared_guest.accel_reason == reason
    if not hw_virt():
        assert shared_guest.accel == "tcg"
    dom_type = ET.fromstring(shared_guest.dom.XMLDesc(0)).get("type")
    assert dom_type == ("kvm" if accel == "kvm" else "qemu")


def test_exec_returns_output_and_exit_code(shared_guest: Any, tiny_image: Any) -> None:
    res = shared_guest.exec(["uname", "-r"]).check()
    assert res.stdout.strip() == tiny_image.manifest.kernel_release
    bad = shared_guest.exec("echo oops >&2; exit 7")
    assert (bad.rc, bad.stderr.strip(), bad.ok) == (7, "oops", False)
    with pytest.raises(BackendError, match="exited 7"):
        bad.check()
    release = shared_guest.exec(["cat", "/etc/vmlab/release"]).check().stdout
    assert f"digest={tiny_image.digest}" in release


def test_domain_carries_vmlab_metadata(shared_guest: Any) -> None:
    from vmlab.backends.libvirt_backend import _metadata

    meta = _metadata(shared_guest.dom)
    assert meta is not None
    assert meta["name"] == "shared" and meta["lab"] == "tests" and meta["run_id"]
    assert int(meta["ssh_port"]) == shared_guest.ssh_port > 0
    xml = shared_guest.dom.XMLDesc(0)
    assert f"hostfwd=tcp:127.0.0.1:{shared_guest.ssh_port}-:22" in xml
    serial = ET.fromstring(xml).find("devices/serial")
    assert serial is not None and serial.get("type") == "file"


def test_stats_show_qemu_memory_and_guest_ram_mapping(shared_guest: Any) -> None:
    stats = shared_guest.stats()
    assert stats["pid"] == shared_guest.pid() and stats["pid"] > 1
    proc = stats["process"]
    assert proc["uss"] > 0 and proc["rss"] >= proc["uss"]
    guest_bytes = stats["libvirt_info"]["max_memory_kib"] * 1024
    assert guest_bytes in [m["size"] for m in stats["mappings"]]  # guest RAM is one mapping of its size
    assert "rss" in stats["libvirt_memory_stats"]


def test_monitor_runs_hmp(shared_guest: Any) -> None:
    out = shared_guest.monitor("info status")
    assert "running" in out
    if shared_guest.accel == "tcg":
        assert "TB count" in shared_guest.monitor("info jit")


def test_console_has_the_ready_marker(shared_guest: Any) -> None:
    assert any(line.startswith("VMLAB_READY uptime=") for line in shared_guest.console_tail(50))


def test_wrong_pinned_host_key_is_refused(shared_guest: Any, tmp_path: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from vmlab.guest.ssh import SshSession

    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    session = SshSession("127.0.0.1", shared_guest.ssh_port, other, shared_guest.session().client_key)
    with pytest.raises(BackendError, match="not the pinned one"):
        session.run(["true"], timeout=30)


def test_ssh_uses_a_per_run_key_not_the_image_key(shared_guest: Any, tiny_image: Any) -> None:
    import stat
    from pathlib import Path

    from vmlab.guest.ssh import SshSession

    run_key = Path(shared_guest.meta["client_key"])
    assert run_key != tiny_image.client_key and stat.S_IMODE(run_key.stat().st_mode) == 0o600
    image_key_session = SshSession(
        "127.0.0.1", shared_guest.ssh_port, tiny_image.host_public_key, tiny_image.client_key
    )
    with pytest.raises(BackendError, match=r"SSH to root@127\.0\.0\.1"):
        image_key_session.run(["true"], timeout=30)


def test_guest_that_panics_fails_fast_with_console_and_is_destroyed(guest_factory: Any) -> None:
    """rdinit=/bin/false: the kernel panics, the domain stops, the wait gives up without the timeout."""
    from vmlab.backends import get_backend

    inst = guest_factory("panic", start=False, kernel_args="rdinit=/bin/false", ready_timeout_s=120)
    inst.start()
    with pytest.raises(GuestFailed) as exc:
        inst.wait_ready()
    assert "Kernel panic" in exc.value.message
    assert any("Kernel panic" in line for line in exc.value.console_tail)
    inst.destroy()
    assert all(r.name != "panic" for r in get_backend("vm").list_owned())


def test_guest_that_never_gets_ready_times_out(guest_factory: Any) -> None:
    """An init that just sleeps: the marker never comes; ReadyTimeout carries the console tail."""
    inst = guest_factory("hang", start=False, kernel_args="rdinit=/bin/sleep -- 600", ready_timeout_s=8)
    inst.start()
    with pytest.raises(GuestNotReady, match="serial ready marker"):
        inst.wait_ready()


def test_memory_below_the_image_minimum_is_refused(guest_factory: Any, tiny_image: Any) -> None:
    with pytest.raises(UsageError, match="minimum"):
        guest_factory("small", memory_mib=tiny_image.min_memory_mib - 1)


def test_spec_validates_names() -> None:
    with pytest.raises(UsageError, match="invalid name"):
        InstanceSpec(name="Bad_Name", run_id="r")


@pytest.mark.hwkvm
@pytest.mark.kvm
def test_kvm_guest_boots_when_hardware_allows(guest_factory: Any) -> None:
    accel, reason = full_guest_accel("auto")
    if accel != "kvm":
        pytest.skip(f"no hardware-assisted KVM here: {reason}")
    inst = guest_factory("kvm1", accel="kvm")
    assert inst.accel == "kvm"
    assert ET.fromstring(inst.dom.XMLDesc(0)).get("type") == "kvm"
    assert inst.exec(["true"]).ok
