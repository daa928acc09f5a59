"""The vcpus step against real guests (1 and 2 vCPUs, TCG here) and a real container with --cpus:
what each guest sees, how QEMU runs its vCPUs, and that speedups are recorded (never their size)."""

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
from vmlab.report.model import Experiment

pytestmark = [pytest.mark.libvirt, pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def vcpus_run(
    tmp_path_factory: pytest.TempPathFactory,
    test_home: Path,
    tiny_image: Any,
    libvirt_available: str,
    docker_available: None,
) -> tuple[Path, dict[str, Experiment], str, str]:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("the host has one CPU: a 2-vCPU guest would only share it")
    out = tmp_path_factory.mktemp("vcpus")
    args = ["system-vm", "vcpus", "--vcpus", "1,2", "--iterations", "20000", "--repeats", "1"]
    result = CliRunner().invoke(app, [*args, "-o", str(out / "report.json")])
    assert result.exit_code == 0, result.output
    report = load_report(out / "report.json")
    group = report.experiments["vcpus"]
    assert isinstance(group, dict)
    return out, group, result.stdout, report.run_id


def test_each_guest_sees_its_vcpus_and_qemu_runs_them(vcpus_run: Any) -> None:
    _, group, _, _ = vcpus_run
    vm = group["vm"]
    assert vm.counts["cpus_seen:1"] == 1 and vm.counts["cpus_seen:2"] == 2
    assert vm.values["threading"] in ("multi", "single", "kvm")
    if vm.values["threading"] == "single":  # round-robin TCG: one thread for every vCPU
        assert vm.counts["vcpu_threads:2"] == 1
    else:
        assert vm.counts["vcpu_threads:1"] == 1 and vm.counts["vcpu_threads:2"] == 2
    assert vm.values["mttcg"] is (vm.values["threading"] == "multi")


def test_speedups_and_boot_times_are_recorded(vcpus_run: Any) -> None:
    _, group, _, _ = vcpus_run
    for kind in ("vm", "container"):
        exp = group[kind]
        assert exp.values["vcpus"] == "1,2" and exp.counts["loops"] == 2
        assert exp.values["speedup:1"] == 1.0
        assert isinstance(exp.values["speedup:2"], float) and exp.values["speedup:2"] > 0
        assert len(exp.series["elapsed_s:1"]) == len(exp.series["elapsed_s:2"]) == 1
    assert group["vm"].values["boot_s:1"] > 0 and group["vm"].values["boot_s:2"] > 0


def test_table_plot_checks_and_nothing_left(vcpus_run: Any) -> None:
    from vmlab.backends import get_backend

    out, _, stdout, run_id = vcpus_run
    assert (out / "vcpus.png").read_bytes()[:4] == b"\x89PNG"
    assert "busy loops" in stdout
    graded = CliRunner().invoke(
        app, ["check", str(out / "report.json"), "--lab", "system-vm", "--task", "t6-vcpus", "--json"]
    )
    checks = [c for c in json.loads(graded.stdout)["checks"] if not c["id"].startswith("q:")]
    assert {c["id"] for c in checks} >= {"guest-sees-its-vcpus", "speedup-recorded"}
    assert failed_verdicts(checks) == []
    for kind in ("vm", "container"):
        backend = get_backend(kind)
        try:
            assert [r.resource for r in backend.list_owned() if r.run_id == run_id] == []
        finally:
            backend.close()
