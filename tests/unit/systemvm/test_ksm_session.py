"""ksm_session on a copy of /sys/kernel/mm/ksm (plain files in a temporary folder): what it writes
inside, and that it puts back exactly what it found, after an error, SIGTERM, or a killed run."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from vmlab.errors import UsageError
from vmlab.systemvm.ksmctl import KsmPace, Terminated, ksm_session, snapshot

HOST = {"run": 0, "pages_to_scan": 100, "sleep_millisecs": 20, "use_zero_pages": 0}


def fake_ksm(tmp_path: Path, settings: dict[str, int] = HOST) -> tuple[Path, dict[str, Path]]:
    d = tmp_path / "ksm"
    d.mkdir()
    for name, value in settings.items():
        (d / name).write_text(f"{value}\n")
    for counter in ("full_scans", "pages_shared", "pages_sharing"):
        (d / counter).write_text("0\n")
    files = {"saved_file": tmp_path / "saved.json", "lock": tmp_path / "lock"}
    return d, files


def read(d: Path) -> dict[str, int]:
    return {n: int((d / n).read_text()) for n in HOST}


def test_pace_inside_host_settings_after(tmp_path: Path) -> None:
    d, files = fake_ksm(tmp_path)
    with ksm_session(KsmPace(1000, 20), d, **files, on_change=lambda _m: None) as saved:
        assert saved == HOST
        assert read(d) == {"run": 1, "pages_to_scan": 1000, "sleep_millisecs": 20, "use_zero_pages": 1}
        assert json.loads(files["saved_file"].read_text()) == HOST  # on disk before anything changed
    assert read(d) == HOST
    assert not files["saved_file"].exists()


def test_restored_after_an_error(tmp_path: Path) -> None:
    d, files = fake_ksm(tmp_path)
    with pytest.raises(RuntimeError), ksm_session(KsmPace(), d, **files, on_change=lambda _m: None):
        raise RuntimeError("a guest failed")
    assert read(d) == HOST


def test_sigterm_raises_and_restores(tmp_path: Path) -> None:
    d, files = fake_ksm(tmp_path)
    old = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), ksm_session(KsmPace(), d, **files, on_change=lambda _m: None):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes
            pass
    assert read(d) == HOST
    assert signal.getsignal(signal.SIGTERM) is old  # the previous handler is back


def test_a_killed_runs_settings_come_back_first(tmp_path: Path) -> None:
    """A run killed outright left KSM running fast and the host's settings in the saved file."""
    left = {"run": 1, "pages_to_scan": 1000, "sleep_millisecs": 20, "use_zero_pages": 1}
    d, files = fake_ksm(tmp_path, left)
    files["saved_file"].write_text(json.dumps(HOST))
    said: list[str] = []
    with ksm_session(KsmPace(500, 10), d, **files, on_change=said.append) as saved:
        assert saved == HOST  # what the session restores is the host's, not the killed run's pace
    assert read(d) == HOST
    assert any("killed run" in m for m in said)


def test_host_running_ksm_keeps_it_running(tmp_path: Path) -> None:
    host = {"run": 1, "pages_to_scan": 250, "sleep_millisecs": 50, "use_zero_pages": 0}
    d, files = fake_ksm(tmp_path, host)
    with ksm_session(KsmPace(), d, **files, on_change=lambda _m: None):
        pass
    assert snapshot(d) == host


def test_pace_bounds() -> None:
    with pytest.raises(UsageError):
        KsmPace(pages_to_scan=0)
    with pytest.raises(UsageError):
        KsmPace(sleep_millisecs=-1)


def test_a_kernel_without_ksm_is_not_available(tmp_path: Path) -> None:
    from vmlab.errors import NotAvailable

    with pytest.raises(NotAvailable, match="no KSM"), ksm_session(KsmPace(), tmp_path / "none"):
        pass


def test_paused_inside_restored_after(tmp_path: Path) -> None:
    from vmlab.systemvm.ksmctl import pause

    host = {"run": 1, "pages_to_scan": 250, "sleep_millisecs": 50, "use_zero_pages": 0}
    d, files = fake_ksm(tmp_path, host)
    with ksm_session(KsmPace(), d, **files, on_change=lambda _m: None):
        pause(d)
        assert (d / "run").read_text().strip() == "0"  # ksmd stopped, merged pages kept
    assert snapshot(d) == host  # the host's ksmd runs again
