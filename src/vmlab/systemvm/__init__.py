"""The system-vm lab: a guest and a container from one root file system, side by side (`vmlab compare`).

Its names, declared once and light to import (the CLI's help reads them at start-up): the lab, and the
experiments compare measures. The kinds are the runtime registry's (vmlab.runtime_registry).
"""

from __future__ import annotations

from typing import Literal, get_args

LAB = "system-vm"
ExperimentName = Literal["startup", "memory", "traps"]
EXPERIMENTS: tuple[ExperimentName, ...] = get_args(ExperimentName)
