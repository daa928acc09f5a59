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

# the lab's hooks are the generic re-measurement: lab.toml [rerun] params say what it compares
from vmlab.grade.calibration import calibrate
from vmlab.grade.remeasure import rerun_measurement as rerun

__all__ = ["calibrate", "rerun"]
