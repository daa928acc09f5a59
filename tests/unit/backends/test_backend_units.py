"""Backend pieces without daemons: names, results, domain XML (parsed by libvirt's test driver),
port allocation, deferred Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from tests.conftest import import_or_unavailable

from vmlab.backends.base import ExecResult, InstanceSpec, as_argv, resource_name, validate_name
from vmlab.backends.libvirt.domain_xml import QEMU_NS, DomainModel, parse_metadata
from vmlab.backends.ports import free_port, port_lock
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, UsageError


@pytest.mark.parametrize("name", ["g1", "a", "web-2", "x" * 32])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "G1", "1g", "a_b", "a-", "x" * 33, "a b", "../x"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(UsageError, match="invalid name"):
        validate_name(name)


def test_spec_rejects_bad_numbers() -> None:
    with pytest.raises(UsageError, match="vcpus"):
        InstanceSpec(name="a", run_id="r", vcpus=0)
    assert resource_name("r1", "g1") == "vmlab-r1-g1"


def test_exec_result() -> None:
    ok = ExecResult(("true",), 0, "", "", 0.1)
    assert ok.ok and ok.check() is ok
    bad = ExecResult(("sh", "-c", "exit 3"), 3, "", "boom\n", 0.1)
    with pytest.raises(BackendError, match="exited 3: boom"):
        bad.check()
    assert as_argv("echo hi") == ("/bin/sh", "-c", "echo hi")
    assert as_argv(["uname", "-r"]) == ("uname", "-r")
    with pytest.raises(UsageError):
        as_argv([])


def _model(domain_type: str = "qemu", port: int = 2222) -> DomainModel:
    return DomainModel(
        name="vmlab-r-g1",
        domain_type=domain_type,  # type: ignore[arg-type]
        memory_mib=256,
        vcpus=2,
        kernel=Path("/cache/vmlinux"),
        initrd=Path("/cache/initrd.cpio"),
        cmdline="console=ttyS0 quiet",
        serial_log=Path("/runs/r/g1/console.log"),
        ssh_port=port,
        metadata={"name": "g1", "run_id": "r", "lab": "l", "ssh_port": str(port)},
    )


def test_domain_xml_boots_the_kernel_with_loopback_ssh() -> None:
    root = ET.fromstring(_model().to_xml())
    assert root.get("type") == "qemu"
    assert (
        root.findtext("os/kernel") == "/cache/vmlinux"
        and root.findtext("os/cmdline") == "console=ttyS0 quiet"
    )
    assert root.find("cpu") is None  # TCG: QEMU's default model
    serial = root.find("devices/serial")
    assert serial is not None and serial.get("type") == "file"
    args = [a.get("value") for a in root.iter(f"{{{QEMU_NS}}}arg")]
    assert "user,id=vmlabnet0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22" in args
    assert any(a and a.startswith("virtio-net-pci") and "bus=pcie.0,addr=0x10" in a for a in args)


def test_kvm_domains_never_use_host_passthrough() -> None:
    cpu = ET.fromstring(_model("kvm").to_xml()).find("cpu")
    assert cpu is not None and cpu.get("mode") == "host-model"


def test_no_forward_before_start() -> None:
    assert "hostfwd" not in _model(port=0).to_xml()


def test_libvirt_test_driver_accepts_the_xml_and_keeps_metadata() -> None:
    libvirt = import_or_unavailable("libvirt")
    from vmlab.backends.base import NS_URI

    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXML(_model().to_xml())
        meta = parse_metadata(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS_URI))
        assert meta == {"name": "g1", "run_id": "r", "lab": "l", "ssh_port": "2222"}
        dom.undefine()
    finally:
        conn.close()


def test_free_port_is_bindable_under_the_lock(tmp_path: Path) -> None:
    with port_lock(tmp_path / "ports.lock"):
        port = free_port(avoid={1})
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_ctrl_c_is_deferred_to_the_end_of_the_block() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("finished")  # the block completes before the interrupt lands
    assert done == ["finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(
    ("argv", "text"), [(["--kind", "pod"], "unknown kind"), (["--accel", "hvf"], "unknown accel")]
)
def test_cli_rejects_bad_options_before_touching_a_daemon(argv: list[str], text: str) -> None:
    from typer.testing import CliRunner

    from vmlab.cli.main import app

    r = CliRunner().invoke(app, ["up", "x1", *argv])
    assert r.exit_code == 2 and text in r.output
