"""Boot-time benchmark of the tiny and micro guests, recorded with the host fingerprint.

Each test cold-starts a guest VMLAB_PERF_RUNS times (default 5) and appends the medians per
readiness stage to $VMLAB_PERF_OUT (default runs/perf/boot.jsonl), one JSON object per line with
`host_info()`, so figures from different machines are comparable. Nothing asserts a duration: the
asserts are about the measurement itself (every run reached every stage, in ladder order).

Targets these record (issue 4): TCG here, micro ready marker < 1.5 s and first SSH command < 2.5 s;
on hosts with hardware KVM, micro ready marker < 200 ms.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.perf.bootbench import STAGES, row, run_bench

pytestmark = [pytest.mark.perf, pytest.mark.libvirt, pytest.mark.slow]


def _runs() -> int:
    return int(os.environ.get("VMLAB_PERF_RUNS", "5"))


def _out() -> Path:
    return Path(os.environ.get("VMLAB_PERF_OUT", "runs/perf/boot.jsonl"))


def _image(name: str) -> Any:
    """tiny is built when missing (seconds); micro only when cached or VMLAB_BUILD_MICRO=1 (minutes)."""
    from vmlab.errors import NotAvailable, UsageError
    from vmlab.images import build_image, get_image

    if name == "micro" and os.environ.get("VMLAB_BUILD_MICRO") != "1":
        try:
            return get_image("micro")
        except UsageError as e:
            pytest.skip(f"micro image not built ({e.one_line()}); set VMLAB_BUILD_MICRO=1 to build it")
    try:
        return build_image(name, progress=lambda m: print(f"[{name} image] {m}", file=sys.stderr))
    except NotAvailable as e:
        pytest.skip(f"cannot build {name}: {e.one_line()}")


def _hardware_kvm() -> str | None:
    """None when a full guest can run under KVM here, else the reason it cannot."""
    from vmlab.host.cpu import hw_virt

    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as e:
        return f"/dev/kvm cannot be opened ({e.strerror})"
    os.close(fd)
    if not hw_virt():
        return "no vmx/svm in /proc/cpuinfo: /dev/kvm here cannot boot a standard kernel (docs/host-facts.md)"
    return None


def _record(result: dict[str, Any]) -> Path:
    from vmlab.host.fingerprint import host_info

    out = _out()
    out.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "benchmark": "boot",
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": host_info().model_dump(mode="json"),
        **result,
    }
    with out.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    print(f"\n{row(result)}\n  -> {out}", file=sys.stderr)
    return out


def _check_measurement(result: dict[str, Any], runs: int) -> None:
    """Every run reached every stage, and the medians are in ladder order (a property, not a speed)."""
    for stage in STAGES:
        assert result["stages"][stage]["n"] == runs, stage
    medians = [result["stages"][s]["median"] for s in STAGES]
    assert medians == sorted(medians)
    assert result["guest_uptime_at_marker"]["n"] == runs


@pytest.mark.parametrize("image", ["tiny", "micro"])
def test_tcg_boot(image: str, libvirt_available: str) -> None:
    info = _image(image)
    runs = _runs()
    result = run_bench(info.name, runs, accel="tcg", label=f"{image} tcg")
    _record(result)
    assert result["accel"] == "tcg"
    _check_measurement(result, runs)


@pytest.mark.hwkvm
@pytest.mark.kvm
def test_kvm_boot_micro(libvirt_available: str) -> None:
    reason = _hardware_kvm()
    if reason:
        pytest.skip(f"hardware KVM absent: {reason}")
    info = _image("micro")
    runs = _runs()
    result = run_bench(info.name, runs, accel="kvm", label="micro kvm")
    _record(result)
    assert result["accel"] == "kvm"
    _check_measurement(result, runs)
