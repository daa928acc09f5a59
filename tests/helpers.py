"""Small builders shared by tests (import as tests.helpers)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmlab.report.model import Experiment
from vmlab.report.stats import summarize


def measured(samples: list[float], unit: str = "s") -> Experiment:
    return Experiment(unit=unit, samples=samples, summary=summarize(samples))


def failed_verdicts(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Required checks that failed, leaving out those marked `timing`.

    A timing check's verdict rests on wall-clock figures, which a busy CI core can swing; the suite
    asserts that such a check was computed (a numeric measurement), never its verdict.
    """
    for c in checks:
        if c.get("timing") and c.get("applicable", True):
            assert c["outcome"] in ("pass", "fail") and c["measured"] is not None, c
    return [
        c
        for c in checks
        if c["required"] and c.get("applicable", True) and c["outcome"] != "pass" and not c.get("timing")
    ]


@dataclass
class Interrupted:
    """How a process met its Ctrl-C: `sent` is False when it ended before it was ready to receive one."""

    sent: bool
    returncode: int | None
    stderr: str


def interrupt_when(
    proc: subprocess.Popen[str],
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float = 60.0,
    settle: float = 0.0,
) -> Interrupted:
    """Send SIGINT once `ready()` holds (after `settle` seconds more); the process is always reaped."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                return Interrupted(False, proc.returncode, proc.communicate()[1] or "")
            assert time.monotonic() < deadline, f"{what} never happened"
            time.sleep(0.02)
        time.sleep(settle)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
        return Interrupted(True, proc.returncode, err or "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
