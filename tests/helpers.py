"""Small builders shared by tests (import as tests.helpers)."""

from __future__ import annotations

from vmlab.report.model import Experiment
from vmlab.report.stats import summarize


def measured(samples: list[float], unit: str = "s") -> Experiment:
    return Experiment(unit=unit, samples=samples, summary=summarize(samples))
