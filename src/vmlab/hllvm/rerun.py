"""Tutors' re-run of hll-vm (`vmlab grade --rerun`, lab.toml `[rerun]`, `where = "host"`).

The verifier step loads vmlab's own hand-made class files; the jasmin step assembles the student's
recorded Jasmin files (the hand-in's copies, sha256 as the report lists them) and loads them in a JVM,
exactly as the student's own run did: on the runner, through the lab pipeline (vmlab.grade.remeasure),
since the re-run container holds no JVM. The JVM's verifier is what grades those classes; they run with
no input and a step time-out. Compared exactly: each class's verifier outcome (`status`, `error`), what
an accepted class printed, and the Jasmin summary's counts. Timed (ratios to the runner's calibrated
baseline, `vmlab grade calibrate --lab hll-vm`): the class-loading start-ups with and without CDS.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmlab.grade.remeasure import Calibration
    from vmlab.grade.rerun import RerunContext
    from vmlab.report.model import CheckResult


def rerun(ctx: RerunContext) -> list[CheckResult]:
    from vmlab.grade.remeasure import rerun_measurement

    return rerun_measurement(ctx)


def calibrate(
    lab: str, output: Path | None, runs: int | None, progress: Callable[[str], None]
) -> tuple[Calibration, Path]:
    from vmlab.grade.remeasure import calibrate as measure

    return measure(lab, output, runs, progress)
