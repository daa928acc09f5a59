"""The devices step against a real guest (TCG here), a real container and a real gVisor sandbox: device
accesses per region from QEMU's trace events, the exact serial writes of the I/O loop, nothing left."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import failed_verdicts
from typer.testing import CliRunner

from vmlab.cli.main import app
from vmlab.report.io import load_report
from vmlab.report.model import Experiment, Report

pytestmark = [pytest.mark.libvirt, pytest.mark.docker, pytest.mark.slow]

BLOCKS = 3
# By hand (independent of the code): `dd bs=64 count=3 | od -v` prints 3 x 64 / 16 = 12 lines of
# "0000000" + 8 x " 000000" = 63 characters, then the closing address "0000300" (7); the tty's onlcr
# sends "\r\n" for each "\n": 12 x 65 + 9 = 789 bytes, one write to COM1's THR (port 0x3f8) each.
EXPECTED_THR = 789


def _group(report: Report) -> dict[str, Experiment]:
    entry = report.experiments["devices"]
    assert isinstance(entry, dict)
    return entry


def _leftovers(run_id: str) -> list[str]:
    from vmlab.backends import get_backend

    left: list[str] = []
    for kind in ("vm", "container", "sandbox"):
        backend = get_backend(kind)
        try:
            left += [r.resource for r in backend.list_owned() if r.run_id == run_id]
        finally:
            backend.close()
    return left


def _domain_logs(run_id: str) -> list[Path]:
    return [
        p
        for d in (Path("/var/log/libvirt/qemu"), Path.home() / ".cache/libvirt/qemu/log")
        for p in d.glob(f"*{run_id}*")
    ]


@pytest.fixture(scope="module")
def devices_run(
    tmp_path_factory: pytest.TempPathFactory,
    test_home: Path,
    tiny_image: Any,
    libvirt_available: str,
    docker_available: None,
) -> tuple[Path, Report, str]:
    out = tmp_path_factory.mktemp("devices")
    args = ["system-vm", "devices", "--io-blocks", str(BLOCKS), "--idle", "1", "-o", str(out / "report.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, load_report(out / "report.json"), result.stdout


def test_guest_device_accesses_per_region_with_the_provider(devices_run: tuple[Path, Report, str]) -> None:
    _, report, _ = devices_run
    vm = _group(report)["vm"]
    if vm.provenance.accel == "kvm":
        pytest.skip("the guest ran under KVM: its counts are exits (test_kvm_exits_on_a_kvm_host)")
    assert vm.provider is not None and vm.provider.startswith("qemu-trace")
    regions = str(vm.values["regions"]).split(",")
    assert "serial" in regions and vm.values["regions_seen"] == len(regions) >= 2
    # the I/O loop wrote to the serial port; the idle and CPU phases never did
    assert vm.counts["io:serial:write"] >= EXPECTED_THR
    assert vm.counts["idle:serial:thr_write"] == 0 and vm.counts["cpu:serial:thr_write"] == 0
    assert vm.counts["idle:total"] > 0  # the timer keeps ticking in an idle guest
    for phase in ("idle", "io", "cpu"):
        c = vm.counts
        assert c[f"{phase}:total"] == c[f"{phase}:reads"] + c[f"{phase}:writes"] == c[f"headline:{phase}"]


def test_the_io_loops_serial_writes_are_exact(devices_run: tuple[Path, Report, str]) -> None:
    _, report, _ = devices_run
    vm = _group(report)["vm"]
    if vm.provenance.accel == "kvm":
        pytest.skip("per-register counts come from QEMU's trace events, used under TCG")
    assert vm.counts["io:serial:thr_write"] == EXPECTED_THR


def test_container_and_sandbox_count_calls_in_the_same_phases(devices_run: tuple[Path, Report, str]) -> None:
    _, report, _ = devices_run
    ct = _group(report)["container"]
    assert ct.provider and "strace" in ct.provider
    assert ct.counts["io:write"] >= BLOCKS  # dd writes each block with one write(2)
    sb = _group(report)["sandbox"]
    if os.geteuid() == 0:
        assert sb.provider and "gVisor" in sb.provider and sb.counts["io:write"] >= BLOCKS
    else:
        assert sb.values["skipped"] is True


def test_table_plots_and_checks(devices_run: tuple[Path, Report, str]) -> None:
    out, _, stdout = devices_run
    assert (out / "devices.png").read_bytes()[:4] == b"\x89PNG"
    assert "Traps per phase" in stdout and "serial" in stdout
    graded = CliRunner().invoke(
        app, ["check", str(out / "report.json"), "--lab", "system-vm", "--task", "t5-device-traps", "--json"]
    )
    checks = [c for c in json.loads(graded.stdout)["checks"] if not c["id"].startswith("q:")]
    assert {c["id"] for c in checks} >= {"serial-writes-exact", "devices-counted-per-region"}
    assert failed_verdicts(checks) == []


def test_nothing_left_behind(devices_run: tuple[Path, Report, str]) -> None:
    _, report, _ = devices_run
    assert _leftovers(report.run_id) == []
    assert _domain_logs(report.run_id) == []  # the trace lines went with the guest's domain log


def test_a_failing_phase_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, test_home: Path, tiny_image: Any, libvirt_available: str
) -> None:
    """The CPU phase's command fails inside the real guest: the step errors, the guest and its log go."""
    from vmlab.systemvm.params import Workloads

    monkeypatch.setattr(Workloads, "cpu", lambda self: "exit 7")
    result = CliRunner().invoke(
        app,
        [
            "system-vm",
            "devices",
            "--kinds",
            "vm",
            "--io-blocks",
            "1",
            "--idle",
            "0.5",
            "-o",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code != 0
    report = load_report(tmp_path / "r.json")
    assert report.steps["devices"].status == "error" and "exited 7" in report.steps["devices"].message
    assert _leftovers(report.run_id) == []
    assert _domain_logs(report.run_id) == []


@pytest.mark.hwkvm
@pytest.mark.kvm
def test_kvm_exits_on_a_kvm_host(
    tmp_path: Path, test_home: Path, tiny_image: Any, libvirt_available: str
) -> None:
    """With hardware KVM the guest's traps are KVM's exit counters, not the trace."""
    from vmlab.host.cpu import full_guest_accel

    accel, reason = full_guest_accel("auto")
    if accel != "kvm":
        pytest.skip(f"no hardware-assisted KVM here, the guest runs under TCG: {reason}")
    args = [
        "system-vm",
        "devices",
        "--kinds",
        "vm",
        "--accel",
        "kvm",
        "--io-blocks",
        "2",
        "-o",
        str(tmp_path / "r.json"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    vm = _group(load_report(tmp_path / "r.json"))["vm"]
    if vm.values.get("skipped"):  # e.g. debugfs not mounted: the report says why and how to fix it
        pytest.skip(f"KVM's exit counters not readable: {vm.values['skipped_reason']} ({vm.values['fix']})")
    assert vm.provenance.accel == "kvm" and vm.provider and "kvm" in vm.provider
    assert vm.counts["headline:io"] > 0


def test_ctrl_c_while_a_phase_is_traced_leaves_nothing(
    test_home: Path, tiny_image: Any, libvirt_available: str
) -> None:
    """SIGINT during the traced idle phase: exit 130, the guest destroyed, its domain log removed."""
    import subprocess

    if libvirt_available != "qemu:///system":
        pytest.skip(f"this test reads qemu:///system's domain logs; the suite uses {libvirt_available}")
    import sys

    from tests.helpers import interrupt_when

    def traced_domain() -> str | None:
        names = subprocess.run(
            ["virsh", "-c", libvirt_available, "list", "--name"], capture_output=True, text=True, check=False
        ).stdout.split()
        for name in names:
            log = Path("/var/log/libvirt/qemu") / f"{name}.log"
            fresh = name.endswith("-dev-vm") and name not in before and log.is_file()
            if fresh and "memory_region_ops" in log.read_text(errors="replace"):
                return name
        return None

    before = set(
        subprocess.run(
            ["virsh", "-c", libvirt_available, "list", "--all", "--name"], capture_output=True, text=True
        ).stdout.split()
    )
    seen: list[str] = []

    def ready() -> bool:
        name = traced_domain()
        if name:
            seen.append(name)
        return bool(name)

    code = "from vmlab.cli.main import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "system-vm", "devices", "--kinds", "vm", "--idle", "30", "--no-plots"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    got = interrupt_when(proc, ready, what="the guest's idle phase being traced", timeout=180, settle=0.5)
    assert got.sent, got.stderr
    assert got.returncode == 130, got.stderr
    name = seen[0]
    left = subprocess.run(
        ["virsh", "-c", libvirt_available, "list", "--all", "--name"], capture_output=True, text=True
    ).stdout
    assert name not in left.split()
    assert not (Path("/var/log/libvirt/qemu") / f"{name}.log").exists()
