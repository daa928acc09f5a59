"""DeviceAccessCounter's orchestration and error paths with a stand-in guest (the real one is in
tests/integration/systemvm): events on only during a phase, only the phase's own lines counted, and a
clear reason when the log cannot be read or stays silent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vmlab.backends.capabilities import CapabilityMissing
from vmlab.systemvm import devices

THR = "9@1.0:memory_region_ops_write cpu 0 mr 0x1 addr 0x3f8 value 0x30 size 1 name 'serial'"
HPET = "9@1.0:memory_region_ops_read cpu 0 mr 0x2 addr 0xfed000f0 value 0x1 size 4 name 'hpet'"


@dataclass
class Result:
    ok: bool = True
    rc: int = 0
    stderr: str = ""


@dataclass
class FakeGuest:
    """Appends trace lines to the 'domain log' while the events are on, as QEMU and virtlogd would."""

    log: Path
    per_exec: list[str]
    name: str = "g"
    resource: str = "vmlab-r-g"
    on: bool = False
    sent: list[str] = field(default_factory=list)

    def monitor(self, cmd: str) -> str:
        self.sent.append(cmd)
        self.on = cmd.endswith(" on")
        return ""

    def exec(self, cmd: str, timeout: float = 60.0) -> Result:
        if self.on:
            with self.log.open("a") as f:
                f.write("".join(line + "\n" for line in self.per_exec))
        return Result()


def _counter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> devices.DeviceAccessCounter:
    log = tmp_path / "vmlab-r-g.log"
    log.write_text(HPET + "\n")  # a line from before the phase: it must not count
    monkeypatch.setattr(devices, "domain_log", lambda resource: log)
    return devices.DeviceAccessCounter(FakeGuest(log, lines))


def test_a_phase_counts_only_its_own_lines_and_switches_the_events_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = _counter(tmp_path, monkeypatch, [THR, THR, HPET])
    got = counter.phase("io", "echo 00", 0)
    assert got["serial:thr_write"] == 2 and got["hpet:read"] == 1 and got["total"] == 3
    guest = counter.inst
    assert guest.sent[:2] == [
        "trace-event memory_region_ops_read on",
        "trace-event memory_region_ops_write on",
    ]
    assert guest.sent[-2:] == [
        "trace-event memory_region_ops_read off",
        "trace-event memory_region_ops_write off",
    ]
    assert counter.snapshot() is None and "io" in counter.durations


def test_a_silent_idle_phase_says_the_trace_backend_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = _counter(tmp_path, monkeypatch, [])
    with pytest.raises(CapabilityMissing, match="wrote no trace line") as e:
        counter.phase("idle", None, 0.01)
    assert e.value.hint and "-trace help" in e.value.hint
    assert counter.inst.sent[-1].endswith(" off")  # switched off even so


def test_an_unreadable_domain_log_is_a_missing_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "domain_log", lambda resource: None)
    with pytest.raises(CapabilityMissing, match="domain log") as e:
        devices.DeviceAccessCounter(FakeGuest(Path("/nonexistent"), []))
    assert e.value.hint and "root" in e.value.hint


def test_a_failing_workload_is_a_backend_error_and_the_events_go_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmlab.errors import BackendError

    counter = _counter(tmp_path, monkeypatch, [THR])
    monkeypatch.setattr(counter.inst, "exec", lambda cmd, timeout=60.0: Result(False, 7, "boom"))
    with pytest.raises(BackendError, match="exited 7"):
        counter.phase("cpu", "false", 0)
    assert counter.inst.sent[-1] == "trace-event memory_region_ops_write off"
