"""The ready marker is read when it is written (inotify), and a half-written line is not taken."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from vmlab.errors import BackendError, ReadyTimeout
from vmlab.guest.console import ConsoleLog
from vmlab.guest.watch import FolderWatch


def test_folder_watch_wakes_on_a_write(tmp_path: Path) -> None:
    watch = FolderWatch.open(tmp_path)
    assert watch is not None
    try:
        assert watch.wait(0.0) is False
        (tmp_path / "log").write_text("x")
        assert watch.wait(1.0) is True
        assert watch.wait(0.0) is False  # drained
    finally:
        watch.close()


def test_wait_marker_returns_once_the_line_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    log = ConsoleLog(path)
    written: list[float] = []

    def guest() -> None:
        time.sleep(0.05)
        path.write_bytes(b"boot\r\nVMLAB_READY uptime=1.6")  # the line is not complete yet
        time.sleep(0.05)
        with path.open("ab") as f:
            f.write(b"6\r\n")
        written.append(time.monotonic())

    t = threading.Thread(target=guest)
    t.start()
    try:
        up = log.wait_marker(
            "VMLAB_READY", deadline=time.monotonic() + 10, stage="marker", abort=lambda: None
        )
    finally:
        t.join()
    assert up == pytest.approx(1.66) and written


def test_wait_marker_gives_up_on_abort_and_at_the_deadline(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path / "console.log")
    with pytest.raises(BackendError, match="QEMU exited"):
        log.wait_marker("M", deadline=time.monotonic() + 10, stage="marker", abort=lambda: "QEMU exited")
    with pytest.raises(ReadyTimeout):
        log.wait_marker("M", deadline=time.monotonic() + 0.05, stage="marker", abort=lambda: None)
