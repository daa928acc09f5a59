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

# the lab's hooks are the generic re-measurement: lab.toml [rerun] params say what it compares
from vmlab.grade.calibration import calibrate
from vmlab.grade.remeasure import rerun_measurement as rerun

__all__ = ["calibrate", "rerun"]
