"""Tutors' re-run of process-vm (`vmlab grade --rerun`, lab.toml `[rerun]`, `where = "host"`).

The counts and vex steps run Valgrind (lackey, none) on vmlab's own workloads and, when the report ran
one, the student's recorded `workload`; the observer step builds the student's recorded tool from source
(cached by its sha256) and runs it beside lackey. All of this needs Valgrind and a compiler, which the
re-run container lacks, so it runs on the runner through the lab pipeline (vmlab.grade.remeasure),
exactly as the student's own run did. Compared exactly: guest instructions, superblocks entered and
completed, translations, per workload and VEX variant; the observer's own counts. Those counts depend on
the compiler and the C library, so they are compared only for a report made on the same platform (OS,
architecture, Valgrind and gcc versions) and skipped with the reason otherwise. Timed (ratios to the
runner's calibrated baseline): the VEX variants' CPU times.
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
