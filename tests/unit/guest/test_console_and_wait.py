"""The serial log reader and the readiness wait, on real files and real sleeps (no timing asserts)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vmlab.errors import BackendError, ReadyTimeout
from vmlab.guest.console import ConsoleLog
from vmlab.guest.wait import wait_for


def test_marker_is_found_as_the_log_grows(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    log = ConsoleLog(path)
    assert log.find_marker("VMLAB_READY") is None  # not created yet
    path.write_bytes(b"\x1b[2J\x1b[0mSeaBIOS\r\nBooting from ROM..VMLAB_REA")
    assert log.find_marker("VMLAB_READY") is None
    with path.open("ab") as f:
        f.write(b"DY uptime=1.66\r\n")
    assert log.find_marker("VMLAB_READY") == pytest.approx(1.66)
    assert log.tail(2) == ["SeaBIOS", "Booting from ROM..VMLAB_READY uptime=1.66"]


def test_panic_line_is_extracted(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_text(
        "[ 1.4] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n[ 1.5] CPU: 0\n"
    )
    assert (
        ConsoleLog(path).panic() == "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"
    )


def test_wait_returns_the_first_value() -> None:
    calls = iter([None, None, 42])
    assert wait_for(lambda: next(calls), deadline=time.monotonic() + 30, stage="s") == 42


def test_wait_times_out_with_the_stage_and_hint() -> None:
    with pytest.raises(ReadyTimeout, match="marker not reached") as exc:
        wait_for(lambda: None, deadline=time.monotonic() + 0.05, stage="marker", hint="longer --timeout")
    assert exc.value.hint == "longer --timeout"


def test_wait_aborts_early_when_waiting_is_pointless() -> None:
    with pytest.raises(BackendError, match="QEMU exited"):
        wait_for(lambda: None, deadline=time.monotonic() + 600, stage="marker", abort=lambda: "QEMU exited")
