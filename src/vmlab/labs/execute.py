"""Run a plan's steps one by one: each under its requirements and timeout, its outcome mapped to a
status (ok, skipped, error, interrupted), what it measured recorded and the report rewritten after it.

A fault in one step never loses the others; Ctrl-C marks the running step `interrupted` and ends the
loop (the pipeline re-raises it once the report is written).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from vmlab.alarm import time_limit
from vmlab.backends.context import RunContext
from vmlab.errors import BackendError, PartialFailure, VmlabError
from vmlab.labs.plan import Plan
from vmlab.labs.provenance import scrub_entries
from vmlab.labs.record import RunDirs, RunRecorder
from vmlab.labs.step import StepContext
from vmlab.report.model import ExperimentEntry, StepStatus

log = logging.getLogger("vmlab")


class StepTimeout(BackendError):
    """A step ran past its `timeout_s`."""


def step_timeout(seconds: float | None, step_id: str) -> AbstractContextManager[None]:
    """The step's own cleanup (context managers) runs when the limit fires."""
    return time_limit(
        seconds,
        lambda: StepTimeout(
            f"step {step_id!r} ran longer than its timeout of {seconds:g} s",
            hint=f"raise timeout_s of [experiments.{step_id}] in lab.toml",
        ),
    )


@dataclass
class StepOutcome:
    """What running one step came to: its status, why (when not ok) and the experiments it produced."""

    status: StepStatus
    message: str = ""
    produced: dict[str, ExperimentEntry] = field(default_factory=dict)


def run_step(plan: Plan, step_id: str, ctx: StepContext) -> StepOutcome:
    """Run one step of the plan under its timeout; every way it can end is one StepOutcome."""
    step = plan.lab.experiments[step_id]
    try:
        with step_timeout(step.timeout_s, step_id):
            produced = dict(plan.runners[step_id](plan.params[step_id], ctx))
        return StepOutcome("ok", produced=produced)
    except KeyboardInterrupt:
        return StepOutcome("interrupted", "interrupted by Ctrl-C")
    except PartialFailure as e:  # what the step measured before it failed is kept
        return StepOutcome("error", e.one_line(), partial_entries(e.partial))
    except VmlabError as e:
        return StepOutcome("error", e.one_line())
    except Exception as e:  # a fault in one step must not lose the others
        log.debug("step %s raised", step_id, exc_info=True)
        return StepOutcome("error", f"{type(e).__name__}: {e}")


def step_context(
    plan: Plan,
    step_id: str,
    dirs: RunDirs,
    inputs: dict[str, Path],
    run: RunContext,
    say: Callable[[str], None],
) -> StepContext:
    """What the step may know of its run: its folders, its declared inputs, the run-wide choices."""
    step = plan.lab.experiments[step_id]
    return StepContext(
        run_id=dirs.run_id,
        lab=plan.lab.lab.name,
        step_id=step_id,
        scratch=dirs.scratch,
        artifacts_dir=dirs.artifacts,
        report_dir=dirs.report.parent,
        lab_dir=plan.lab.folder,
        inputs={n: p for n, p in inputs.items() if n in step.inputs},
        run=run,
        progress=say,
    )


def run_steps(
    plan: Plan,
    dirs: RunDirs,
    recorder: RunRecorder,
    inputs: dict[str, Path],
    run: RunContext,
    say: Callable[[str], None],
) -> bool:
    """Run every step of the plan in order, recording each; True when Ctrl-C ended the run."""
    from vmlab.host.requirements import Unmet, unmet
    from vmlab.labs.tools import lab_tools

    name = plan.lab.lab.name
    home = str(Path.home())
    probed: dict[str, Unmet | None] = {}
    tools = lab_tools(plan.lab)
    for step_id in plan.steps:
        record = recorder.steps[step_id]
        missing = unmet(plan.lab.experiments[step_id].requires, probed, tools)
        if missing:
            record.status, record.message = "skipped", "; ".join(m.one_line() for m in missing)
            say(f"{name}: {step_id} skipped: {record.message}")
            recorder.save()
            continue
        ctx = step_context(plan, step_id, dirs, inputs, run, say)
        say(f"{name}: running {step_id}")
        record.started_at = dt.datetime.now(dt.UTC)
        recorder.save()
        t0 = time.monotonic()
        outcome = run_step(plan, step_id, ctx)
        record.duration_s = round(time.monotonic() - t0, 6)
        record.status, record.message = outcome.status, outcome.message
        if outcome.status == "error":
            say(f"{name}: {step_id} failed: {outcome.message}")
        produced = scrub_entries(outcome.produced, home)
        record.experiments = list(produced)
        record.artifacts = ctx.artifacts
        recorder.experiments.update(produced)
        if ctx.accel is not None:
            recorder.accel = ctx.accel
        recorder.save()
        if outcome.status == "interrupted":
            return True
    return False


def partial_entries(partial: dict[str, object]) -> dict[str, ExperimentEntry]:
    """The experiments among a partial result (anything else is dropped: the step's error says why)."""
    from pydantic import TypeAdapter, ValidationError

    adapter: TypeAdapter[ExperimentEntry] = TypeAdapter(ExperimentEntry)
    out: dict[str, ExperimentEntry] = {}
    for key, value in partial.items():
        try:
            out[key] = adapter.validate_python(value)
        except ValidationError:
            log.debug("partial result %s is not an experiment", key)
    return out
