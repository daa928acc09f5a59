"""Whether a check's (or a question's) figures can be graded at all: a step behind its paths that did
not run fine makes it `skipped` or `error` (0 points), never a fail of the student's data."""

from __future__ import annotations

from vmlab.report.model import Outcome, Report
from vmlab.spec.lab import Lab
from vmlab.spec.paths import ParsedPath


def step_of(experiment: str, report: Report) -> str | None:
    """The step that produced an experiment (a step may produce several, or be named like it)."""
    if experiment in report.steps:
        return experiment
    return next((sid for sid, s in report.steps.items() if experiment in s.experiments), None)


def paths_gate(
    paths: list[ParsedPath], task: str | None, report: Report, lab: Lab | None
) -> tuple[Outcome, str] | None:
    """skipped/error when a step behind the paths did not run fine (a step with no record did not
    run); None to grade the data. Shared by the checks (vmlab.check.grader) and the questions
    (vmlab.check.questions)."""
    steps: list[str] = []
    for p in paths:
        if p.experiment is None:
            continue
        step = step_of(p.experiment, report)
        if step is not None:
            steps.append(step)
        elif task is not None and lab is not None:
            steps += next((t.experiments for t in lab.tasks if t.id == task), [])
    worst: tuple[Outcome, str] | None = None
    for sid in dict.fromkeys(steps):
        rec = report.steps.get(sid)
        status = rec.status if rec is not None else "not_run"
        why = f": {rec.message}" if rec is not None and rec.message else ""
        if status == "error":
            return "error", f"step {sid} failed{why}"
        if status != "ok" and worst is None:
            said = {"not_run": "did not run", "interrupted": "was interrupted"}.get(status, "was skipped")
            worst = "skipped", f"step {sid} {said}{why}"
    return worst
