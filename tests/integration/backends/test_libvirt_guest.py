"""The tiny guest's failure paths under libvirt for real: a panic, a hang, a refused spec; each boots its
own guest. What a ready guest offers is checked in test_every_runtime.py, on the one shared boot."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from vmlab.backends.base import InstanceSpec
from vmlab.backends.libvirt.instance import GuestFailed, GuestNotReady
from vmlab.errors import UsageError
from vmlab.host.cpu import full_guest_accel

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]


def test_guest_that_panics_fails_fast_with_console_and_is_destroyed(guest_factory: Any) -> None:
    """rdinit=/bin/false: the kernel panics, the domain stops, the wait gives up without the timeout."""
    from vmlab.backends import get_backend

    inst = guest_factory(
        "panic", start=False, options={"kernel_args": "rdinit=/bin/false"}, ready_timeout_s=120
    )
    inst.start()
    with pytest.raises(GuestFailed) as exc:
        inst.wait_ready()
    assert "Kernel panic" in exc.value.message
    assert any("Kernel panic" in line for line in exc.value.console_tail)
    inst.destroy()
    assert all(r.name != "panic" for r in get_backend("vm").list_owned())


def test_guest_that_never_gets_ready_times_out(guest_factory: Any) -> None:
    """An init that just sleeps: the marker never comes; ReadyTimeout carries the console tail."""
    inst = guest_factory(
        "hang", start=False, options={"kernel_args": "rdinit=/bin/sleep -- 600"}, ready_timeout_s=8
    )
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
