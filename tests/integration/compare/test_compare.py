"""A short `vmlab compare` (runs=1) against the real runtimes: a TCG guest here, a real container and a
real gVisor sandbox."""

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


@pytest.fixture(scope="module")
def compare_run(
    tmp_path_factory: pytest.TempPathFactory,
    test_home: Path,
    tiny_image: Any,
    libvirt_available: str,
    docker_available: None,
) -> tuple[Path, Report, str]:
    out = tmp_path_factory.mktemp("compare")
    result = CliRunner().invoke(app, ["compare", "--runs", "1", "-o", str(out / "report.json")])
    assert result.exit_code == 0, result.output
    return out, load_report(out / "report.json"), result.stdout


def group(report: Report, key: str) -> dict[str, Experiment]:
    entry = report.experiments[key]
    assert isinstance(entry, dict)
    return entry


def test_every_ladder_stage_is_recorded_in_order(compare_run: tuple[Path, Report, str]) -> None:
    _, report, _ = compare_run
    startup = group(report, "startup")
    assert set(startup) == {"native", "container", "sandbox", "vm"}
    assert list(startup["sandbox"].stages) == ["create_called", "created", "running", "first_exec"]
    assert startup["sandbox"].provenance.backend == "docker-runsc"
    vm_stages = [
        "create_called",
        "created",
        "process_running",
        "serial_marker",
        "ssh_port",
        "ssh_banner",
        "first_command",
    ]
    assert list(startup["vm"].stages) == vm_stages
    assert list(startup["container"].stages) == ["create_called", "created", "running", "first_exec"]
    medians = [startup["vm"].stages[s].summary.median for s in vm_stages]
    assert medians == sorted(medians)
    assert startup["vm"].provenance.accel in ("kvm", "tcg") and startup["vm"].provenance.accel_reason
    assert startup["vm"].values["guest_uptime_at_marker_s"] > 0  # type: ignore[operator]


def test_memory_separates_guest_ram_from_qemu(compare_run: tuple[Path, Report, str]) -> None:
    _, report, _ = compare_run
    vm = group(report, "memory")["vm"].values
    assert vm["idle_qemu_guest_ram_size"] >= 256 * 1024 * 1024  # type: ignore[operator]
    # touching 32 MiB inside the guest makes more of its RAM mapping resident
    assert vm["after_workload_rss"] > vm["idle_workload_rss"]  # type: ignore[operator]
    assert vm["idle_overhead"] == vm["idle_qemu_rss"] - vm["idle_workload_rss"]  # type: ignore[operator]
    ct = group(report, "memory")["container"].values
    assert ct["after_workload_rss"] > ct["idle_workload_rss"]  # type: ignore[operator]
    sb = group(report, "memory")["sandbox"].values  # the Sentry, the Gofer and the shim are the overhead
    assert sb["idle_overhead"] == sb["idle_shim_rss"] + sb["idle_sentry_rss"] + sb["idle_gofer_rss"]


def test_traps_name_their_provider_and_grow(compare_run: tuple[Path, Report, str]) -> None:
    _, report, _ = compare_run
    traps = group(report, "traps")
    vm, ct = traps["vm"], traps["container"]
    assert vm.provider and ct.provider and "strace" in ct.provider
    assert vm.counts["headline:after"] > vm.counts["headline:before"]
    if vm.provenance.accel == "tcg":
        assert "info jit" in vm.provider
        assert any("TCG" in n for n in vm.provenance.notes)
    # the container's I/O loop writes through the kernel: at least one write call per output block
    assert ct.counts["io:write"] >= 2
    assert (
        ct.counts["headline:after"]
        == ct.counts["idle:total"] + ct.counts["io:total"] + ct.counts["cpu:total"]
    )
    sb = traps["sandbox"]
    if os.geteuid() == 0:  # runsc debug and the Sentry's log are root's
        assert sb.provider and "gVisor" in sb.provider
        assert sb.counts["io:write"] >= 2 and sb.counts["io:host_total"] > 0
        assert sb.counts["headline:after"] > sb.counts["headline:before"]
    else:
        assert sb.values["skipped"] is True and sb.values["fix"]


def test_plots_table_and_grading(compare_run: tuple[Path, Report, str]) -> None:
    out, _, stdout = compare_run
    for name in ("startup.png", "memory.png", "traps.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "first_command" in stdout and "overhead" in stdout
    # the tasks of the compare step (`vmlab compare` runs that step only)
    tasks = [a for t in ("t1-startup", "t2-memory", "t3-traps", "t4-syscall-path") for a in ("--task", t)]
    graded = CliRunner().invoke(
        app, ["check", str(out / "report.json"), "--lab", "system-vm", "--json", *tasks]
    )
    checks = json.loads(graded.stdout)["checks"]
    assert failed_verdicts(checks) == []
    assert graded.exit_code == (0 if all(c["outcome"] == "pass" for c in checks if c["required"]) else 1)


def test_nothing_left_behind(compare_run: tuple[Path, Report, str]) -> None:
    from vmlab.backends import get_backend

    _, report, _ = compare_run
    for kind in ("vm", "container", "sandbox"):
        backend = get_backend(kind)
        try:
            assert [r.resource for r in backend.list_owned() if r.run_id == report.run_id] == []
        finally:
            backend.close()


def test_lab_run_system_vm_for_real(
    tmp_path: Path, test_home: Path, tiny_image: Any, libvirt_available: str, docker_available: None
) -> None:
    """`lab run system-vm` through the pipeline, nothing stubbed: start-up only, one cold start each."""
    report_path = tmp_path / "r.json"
    args = [
        "lab",
        "run",
        "system-vm",
        "-o",
        str(report_path),
        "--task",
        "t1-startup",
        "--set",
        "compare.runs=1",
    ]
    result = CliRunner().invoke(app, [*args, "--set", 'compare.only=["startup"]', "--student", "s1"])
    assert result.exit_code == 0, result.output
    report = load_report(report_path)
    assert report.steps["compare"].status == "ok" and report.steps["compare"].params["runs"] == 1
    assert report.run.student == "s1" and report.run.lab_sha256
    assert report.host.versions.get("qemu") and report.host.versions.get("docker")
    flags = Path("/proc/cpuinfo").read_text().split()
    if "vmx" not in flags and "svm" not in flags:  # no hardware virtualisation: guests ran under TCG
        assert report.host.accel == "tcg" and report.host.accel_reason
    graded = CliRunner().invoke(app, ["check", str(report_path), "--task", "t1-startup", "--json"])
    assert failed_verdicts(json.loads(graded.stdout)["checks"]) == []
