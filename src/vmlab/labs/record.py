"""Record a run: the report is written before any step runs (every step `not_run`) and rewritten,
atomically, after every change, so a fault or Ctrl-C at any point leaves a whole report behind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmlab import __version__
from vmlab.backends.context import RunContext
from vmlab.labs.inputs import ARTIFACTS
from vmlab.labs.plan import Plan
from vmlab.labs.provenance import scrub, vmlab_commit
from vmlab.report.model import (
    ExperimentEntry,
    InputRecord,
    Predictions,
    Report,
    RunInfo,
    SealedPredictions,
    StepRecord,
)
from vmlab.spec.lab import Lab
from vmlab.spec.questions import ANSWERS_INPUT


@dataclass(frozen=True)
class RunDirs:
    """Where one run writes: its report, the artifacts folder beside it and its scratch folder."""

    run_id: str
    report: Path
    scratch: Path

    @property
    def artifacts(self) -> Path:
        return self.report.parent / ARTIFACTS


def run_params(context: RunContext) -> dict[str, Any]:
    """The run-wide choices as the report records them in `params` (`connect` is `-c`'s URI)."""
    params: dict[str, Any] = {}
    if context.uri:
        params["connect"] = context.uri
    if context.runtimes:
        params["runtimes"] = dict(context.runtimes)
    if context.accel != "auto":
        params["accel"] = context.accel
    return params


def new_report(
    plan: Plan,
    dirs: RunDirs,
    *,
    student: str | None,
    context: RunContext,
    inputs: dict[str, InputRecord],
    input_paths: dict[str, Path],
) -> Report:
    """The report of a run that has not run a step yet: provenance, inputs, answers, steps `not_run`."""
    from vmlab.host.fingerprint import host_info
    from vmlab.labs.tools import lab_tools

    lab = plan.lab
    commit, dirty = vmlab_commit()
    host = host_info(tuple(lab.lab.tools), tuple(lab_tools(lab).values()))
    steps = {
        s: StepRecord(
            status="not_run",
            params=plan.params[s].model_dump(mode="json"),
            requires=lab.experiments[s].requires,
        )
        for s in plan.steps
    }
    return Report(
        vmlab_version=__version__,
        lab=lab.lab.name,
        run_id=dirs.run_id,
        created_at=dt.datetime.now(dt.UTC),
        host=host.model_copy(update={"accel": None, "accel_reason": None}),
        run=RunInfo(
            student=student or None,
            vmlab_commit=commit,
            vmlab_dirty=dirty,
            lab_sha256=lab.sha256,
            tasks=plan.tasks,
            status="partial",
            variant=plan.variant,
        ),
        params=scrub(run_params(context), str(Path.home())),
        steps=steps,
        inputs=inputs,
        predictions=_predictions(lab, inputs, input_paths, plan.sealed),
    )


def _predictions(
    lab: Lab, inputs: dict[str, InputRecord], paths: dict[str, Path], sealed: SealedPredictions | None
) -> Predictions | None:
    """The answers as recorded (parsed from the copy in artifacts/, whose sha256 the record holds)."""
    from vmlab.spec.answers import read_answers

    if not lab.questions or ANSWERS_INPUT not in inputs:
        return None
    answers = read_answers(paths[ANSWERS_INPUT], lab)
    return Predictions(sha256=inputs[ANSWERS_INPUT].sha256, answers=answers, sealed=sealed)


def warn_seal(lab: Lab, report: Report, say: Callable[[str], None]) -> None:
    """Say at once when the sealed numbers are not the answers' (the grader fails the `answers` check)."""
    from vmlab.spec.answers import seal_differences

    preds = report.predictions
    if preds is None or preds.sealed is None:
        return
    diffs = seal_differences(preds.sealed, lab, preds.answers)
    if diffs:
        say(f"{lab.lab.name}: warning: the sealed predictions differ from the answers ({diffs[0]})")


class RunRecorder:
    """The report of one run and its file: the steps' records and experiments as they come in."""

    def __init__(self, report: Report, path: Path) -> None:
        self.report = report
        self.path = path
        self.steps: dict[str, StepRecord] = dict(report.steps)
        self.experiments: dict[str, ExperimentEntry] = dict(report.experiments)
        self.accel: tuple[str, str] | None = None  # what a step's guests really ran on, and why

    def save(self) -> Report:
        """Rewrite the report with the steps, experiments and artifacts so far."""
        artifacts = [a for s in self.steps.values() for a in s.artifacts]
        host = self.report.host
        if self.accel is not None:
            host = host.model_copy(update={"accel": self.accel[0], "accel_reason": self.accel[1]})
        self.report = self.report.model_copy(
            update={
                "steps": {k: v.model_copy() for k, v in self.steps.items()},
                "experiments": dict(self.experiments),
                "artifacts": artifacts,
                "host": host,
            }
        )
        save_kept(self.report, self.path)
        return self.report

    def finish(self, interrupted: bool) -> Report:
        """The run's status (complete, partial or interrupted) and end time, written."""
        whole = all(s.status == "ok" for s in self.steps.values())
        status = "interrupted" if interrupted else ("complete" if whole else "partial")
        run = self.report.run.model_copy(update={"status": status, "finished_at": dt.datetime.now(dt.UTC)})
        self.report = self.report.model_copy(update={"run": run})
        save_kept(self.report, self.path)
        return self.report


def save_kept(report: Report, path: Path) -> None:
    """Rewrite the report during a run; when the write fails (a disk filling up), the report last
    written is still whole at `path`, and the error says so on its second line."""
    from vmlab.errors import OutputError
    from vmlab.report.io import save_report

    try:
        save_report(report, path)
    except OutputError as e:
        e.partial_report = str(path)
        raise
