"""Small builders shared by tests (import as tests.helpers)."""

from __future__ import annotations

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
