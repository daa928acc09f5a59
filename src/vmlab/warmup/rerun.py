"""Tutors' re-run of warmup (`vmlab grade --rerun`, lab.toml `[rerun]`, `where = "host"`).

The steps are vmlab's own runner with the student's parameters: nothing of the student's runs, so they
run again on the runner itself through the lab pipeline (vmlab.grade.remeasure). The re-run compares
the runs counts and the text `uname -s` printed; start-up medians are compared as ratios to the
runner's calibrated baseline (`vmlab grade calibrate --lab warmup`).
"""

from __future__ import annotations

# the lab's hooks are the generic re-measurement: lab.toml [rerun] params say what it compares
from vmlab.grade.calibration import calibrate
from vmlab.grade.remeasure import rerun_measurement as rerun

__all__ = ["calibrate", "rerun"]
