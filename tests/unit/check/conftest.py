"""A report factory with step records, for outcomes that follow the steps."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vmlab.report.model import ExperimentEntry, Report, StepRecord, StepStatus


@pytest.fixture
def report_with_steps(make_report: Callable[..., Report]) -> Callable[..., Report]:
    def make(experiments: dict[str, ExperimentEntry], **statuses: StepStatus) -> Report:
        steps = {
            sid: StepRecord(status=st, message="" if st == "ok" else f"{sid} said no")
            for sid, st in statuses.items()
        }
        return make_report(experiments).model_copy(update={"steps": steps})

    return make
