"""Tutors' re-run of system-vm (`vmlab grade --rerun`, lab.toml `[rerun]`, `where = "host"`).

The step is vmlab's own runner (guests under libvirt, containers, the gVisor sandbox) with the
student's parameters: nothing of the student's runs, so it runs again on the runner itself through the
lab pipeline (vmlab.grade.remeasure), not in the re-run container, which has neither Docker nor
libvirt. Re-run with `runs = 1` (the counts do not depend on it), it compares the writes of the I/O
loop in the container and in the sandbox and which start-up stages each kind has. Start-up medians are
compared as ratios to the runner's calibrated baseline (`vmlab grade calibrate --lab system-vm`).
"""

from __future__ import annotations

# the lab's hooks are the generic re-measurement: lab.toml [rerun] params say what it compares
from vmlab.grade.calibration import calibrate
from vmlab.grade.remeasure import rerun_measurement as rerun

__all__ = ["calibrate", "rerun"]
