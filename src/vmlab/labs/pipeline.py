"""The one run pipeline: every lab run, `compare` and `isa bench` come through `run_lab`.

Order of work, so that bad input costs nothing and a fault loses nothing; each stage is a function of
its own module that a test can call:
1. plan (vmlab.labs.plan): everything the user typed is validated (steps, `--set` keys and types,
   inputs) before any folder is made; the lab is read once and carries its folder and digest;
2. stage inputs (vmlab.labs.inputs): inputs are copied into `artifacts/inputs/` and hashed; the report
   is written with every step `not_run` (vmlab.labs.record);
3. run steps (vmlab.labs.execute): each step runs under its requirements and timeout; its status,
   effective parameters, experiments and artifacts are recorded and the report is rewritten
   (atomically) after it;
4. record (vmlab.labs.record): the run's status and end time; Ctrl-C marks the running step
   `interrupted`, writes the report and re-raises.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vmlab.errors import UsageError
from vmlab.labs.execute import run_steps
from vmlab.labs.inputs import ELSEWHERE, MARKER, stage_inputs
from vmlab.labs.plan import Plan, RunRequest, plan_run
from vmlab.labs.record import RunDirs, RunRecorder, new_report, warn_seal
from vmlab.report.model import Report
from vmlab.spec.lab import Lab

log = logging.getLogger("vmlab")

__all__ = ["RunOutcome", "RunRequest", "run_lab"]


@dataclass
class RunOutcome:
    report: Report
    path: Path
    lab: Lab  # as the run read it: its views and folder need no second read of lab.toml

    @property
    def exit_code(self) -> int:
        """0 when every step ran; 3 when some step was skipped or failed (the report is not whole)."""
        return 0 if all(s.status == "ok" for s in self.report.steps.values()) else 3


def run_dirs(output: Path | None) -> RunDirs:
    """The run's id and folders; a report path that is a folder or cannot be written is one line, and
    nothing is made but the (checked) VMLAB_HOME."""
    from vmlab.paths import new_run_id, run_dir, usable_home
    from vmlab.report.io import probe_writable

    usable_home()  # every run's scratch lives there, with -o or without: checked before anything is made
    rid = new_run_id()
    given = output.absolute() if output is not None else None
    if given is not None and given.is_dir():
        raise UsageError(f"-o {output}: is a folder; give a file name such as {given / 'report.json'}")
    if given is not None:
        probe_writable(given, elsewhere=ELSEWHERE)  # a read-only or full -o: one line, old files kept
    return RunDirs(
        run_id=rid, report=given or (run_dir(rid) / "report.json").absolute(), scratch=run_dir(rid)
    )


def start_run(
    plan: Plan, req: RunRequest, dirs: RunDirs, say: Callable[[str], None]
) -> tuple[RunRecorder, dict[str, Path]]:
    """Stage the inputs and write the first report; on any fault (Ctrl-C too) leave no half-made run
    behind (an old report and an artifacts folder vmlab did not write are kept)."""
    from vmlab.report.io import save_report

    artifacts = dirs.artifacts
    ours = not artifacts.exists() or (artifacts / MARKER).exists()
    try:
        inputs, input_paths = stage_inputs(plan.lab, req.inputs, dirs.scratch, artifacts, dirs.report)
        report = new_report(
            plan, dirs, student=req.student, context=req.context, inputs=inputs, input_paths=input_paths
        )
        save_report(report, dirs.report)
        warn_seal(plan.lab, report, say)
        _say_variant(plan, req.student, say)
    except BaseException:
        shutil.rmtree(dirs.scratch / "inputs", ignore_errors=True)
        if ours and (artifacts / MARKER).exists():
            shutil.rmtree(artifacts, ignore_errors=True)
        with contextlib.suppress(OSError):
            dirs.scratch.rmdir()
        raise
    return RunRecorder(report, dirs.report), input_paths


def _say_variant(plan: Plan, student: str | None, say: Callable[[str], None]) -> None:
    if plan.variant is None:
        return
    name = plan.lab.lab.name
    if not student:
        say(
            f"{name}: no student id: this runs the anonymous variant, which grades as nobody's; "
            "give --student ID (or set VMLAB_STUDENT) for your own"
        )
    for target in plan.overridden:
        say(f"{name}: warning: --set {target} replaces your variant's value: the `variant` check will fail")


def run_lab(req: RunRequest, progress: Callable[[str], None] | None = None) -> RunOutcome:
    """Plan, stage the inputs, run the steps, record; see the module doc."""
    say = progress or log.info
    plan = plan_run(req)
    dirs = run_dirs(req.output)
    recorder, input_paths = start_run(plan, req, dirs, say)
    interrupted = run_steps(plan, dirs, recorder, input_paths, req.context, say)
    report = recorder.finish(interrupted)
    if dirs.scratch != dirs.report.parent:
        with contextlib.suppress(OSError):
            dirs.scratch.rmdir()  # only when the steps left nothing there: a run's scratch is not kept empty
    if interrupted:
        raise KeyboardInterrupt
    return RunOutcome(report=report, path=dirs.report, lab=plan.lab)
