"""The warmup lab's step: native process start-up, the baseline every VM and container figure is
compared against."""

from __future__ import annotations

import shutil
import sys

from pydantic import Field

from vmlab.errors import UsageError
from vmlab.labs.native import time_process
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry, Provenance
from vmlab.report.stats import summarize


class StartupParams(StepParams):
    argv: list[str] = Field(min_length=1)
    runs: int = Field(10, ge=1, le=10_000)


def _argv(params: StartupParams) -> list[str]:
    # "{python}" stands for the interpreter running vmlab, so the lab does not depend on PATH.
    argv = [sys.executable if a == "{python}" else a for a in params.argv]
    if shutil.which(argv[0]) is None:
        raise UsageError(f"program {argv[0]!r} not found", hint="install it or fix argv in lab.toml")
    return argv


def startup(params: StartupParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step runner: start a host process `runs` times (default 10)."""
    argv = _argv(params)
    runs = params.runs
    ctx.progress(f"{ctx.step_id}: {runs} starts of {' '.join(argv)}")
    samples, output = time_process(argv, runs)
    exp = Experiment(
        unit="s",
        samples=samples,
        summary=summarize(samples),
        provenance=Provenance(backend="native"),
        counts={"runs": runs},
        values={"argv": " ".join(argv)},
        text=output,
    )
    return {ctx.step_id: exp}
