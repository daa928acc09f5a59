"""Builders for grader tests: a lab from a few check tables, a report with step records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vmlab.check.model import Derivation
from vmlab.labs.model import Lab
from vmlab.report.model import ExperimentEntry, Report, StepRecord


class LabWithDerived(Lab):
    """Lab as it will be once lab.toml may declare `[[derived]]` (see the grader's integrity check)."""

    derived: list[Derivation] = []


def make_lab(checks: list[dict[str, Any]], *, derived: list[dict[str, Any]] | None = None) -> Lab:
    data: dict[str, Any] = {
        "lab": {"name": "t", "title": "t"},
        "tasks": [
            {"id": "t1", "title": "first", "experiments": ["a", "b"]},
            {"id": "t2", "title": "second", "experiments": ["c"]},
        ],
        "experiments": {s: {"runner": "m:f"} for s in ("a", "b", "c")},
        "checks": checks,
    }
    if derived is not None:
        return LabWithDerived.model_validate({**data, "derived": derived})
    return Lab.model_validate(data)


@pytest.fixture
def report_with_steps(make_report: Callable[..., Report]) -> Callable[..., Report]:
    def make(experiments: dict[str, ExperimentEntry], **statuses: str) -> Report:
        r = make_report(experiments)
        steps = {sid: StepRecord(status=st, message="" if st == "ok" else f"{sid} said no") for sid, st in statuses.items()}  # type: ignore[arg-type]
        return r.model_copy(update={"steps": steps})

    return make
