"""The devices and vcpus tables fit 80 columns and show what the report holds; the plots are PNGs;
the lab's table view shows compare's table only when the report has compare's groups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from vmlab.report.model import Experiment, Provenance, Report
from vmlab.systemvm import devtrace
from vmlab.systemvm.devices import DevicesParams, _Measured, experiment_of
from vmlab.systemvm.part3_views import lab_plots, lab_table


def _devices() -> dict[str, Experiment]:
    vm = _Measured("libvirt", "tcg", "no vmx", devtrace.PROVIDER, "total")
    vm.counts = {
        "idle:hpet:read": 200, "idle:apic-msi:write": 80, "idle:total": 280,
        "io:serial:write": 4400, "io:serial:thr_write": 4169, "io:serial:read": 1200, "io:total": 5600,
        "cpu:hpet:read": 210, "cpu:total": 210,
    }  # fmt: skip
    ct = _Measured("docker", None, None, "strace -c -f on the container's process", "total")
    ct.counts = {"idle:total": 0, "io:total": 99, "io:write": 19, "cpu:total": 7}
    params = DevicesParams.model_validate({})
    return {"vm": experiment_of("vm", vm, params), "container": experiment_of("container", ct, params)}


def _vcpus() -> dict[str, Experiment]:
    vm = Experiment(
        unit="s",
        values={"vcpus": "1,2", "loops": 2, "threading": "multi", "boot_s:1": 2.4, "boot_s:2": 2.7,
                "elapsed_s:1": 5.0, "elapsed_s:2": 4.0, "speedup:1": 1.0, "speedup:2": 1.25},
        counts={"vcpu_threads:1": 1, "vcpu_threads:2": 2},
        provenance=Provenance(backend="libvirt", accel="tcg"),
    )  # fmt: skip
    ct = Experiment(unit="s", values={"vcpus": "1,2", "loops": 2, "elapsed_s:1": 0.5, "speedup:2": 1.8})
    return {"vm": vm, "container": ct}


def _text(report: Report) -> str:
    console = Console(width=80, record=True)
    console.print(lab_table(report))
    return console.export_text()


def test_devices_table_per_phase_with_the_exact_serial_line(make_report: Callable[..., Report]) -> None:
    text = _text(make_report({"devices": _devices()}, lab="system-vm"))
    assert "device acc." in text and "syscalls" in text
    assert "5,600" in text and "99" in text
    assert text.count("4,169") == 2  # measured and expected (260 x 16 + 9)
    assert "1,200/4,400" in text  # serial reads/writes in the I/O phase
    assert "vmlab compare" not in text  # no compare groups, no compare table
    assert max(len(line) for line in text.splitlines()) <= 80


def test_vcpus_table(make_report: Callable[..., Report]) -> None:
    text = _text(make_report({"vcpus": _vcpus()}, lab="system-vm"))
    assert "multi-threaded TCG" in text and "1.25" in text and "1.80" in text and "2.70" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_plots_are_pngs(tmp_path: Path, make_report: Callable[..., Report]) -> None:
    report = make_report({"devices": _devices(), "vcpus": _vcpus()}, lab="system-vm")
    made = lab_plots(report, tmp_path)
    assert [p.name for p in made] == ["devices.png", "vcpus.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in made)
