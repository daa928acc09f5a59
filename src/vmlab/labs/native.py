"""A native process started and timed: the baseline every VM and container figure is compared with.

Shared by the labs that time a host process (a step timing a program, a comparison's native column),
so no lab imports another for it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence

from vmlab.errors import UsageError


def time_process(argv: Sequence[str], runs: int) -> tuple[list[float], str]:
    """Wall time from spawn to exit of `runs` cold starts, and the output of the last one."""
    samples: list[float] = []
    output = ""
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
        samples.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise UsageError(f"{' '.join(argv)} exited with {proc.returncode}: {proc.stderr.strip()[:200]}")
        output = proc.stdout
    return samples, output
