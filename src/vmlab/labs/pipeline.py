"""The one run pipeline: every lab run, `compare` and `isa bench` come through `run_lab`.

Order of work, so that bad input costs nothing and a fault loses nothing:
1. everything the user typed is validated (steps, `--set` keys and types, inputs) before any folder
   is made;
2. inputs are copied into `artifacts/inputs/` and hashed; the report is written with every step
   `not_run`;
3. each step runs under its requirements and timeout; its status, effective parameters, experiments
   and artifacts are recorded and the report is rewritten (atomically) after it;
4. Ctrl-C marks the running step `interrupted`, writes the report and re-raises.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import logging
import os
import shutil
import subprocess
import time
import typing
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from vmlab import __version__
from vmlab.alarm import time_limit
from vmlab.errors import BackendError, PartialFailure, UsageError, VmlabError
from vmlab.labs.catalog import lab_path, lab_sha256, load_lab, resolve
from vmlab.labs.model import ANSWERS_INPUT, Lab
from vmlab.labs.step import StepContext, StepParams, sha256_file
from vmlab.report.model import (
    ExperimentEntry,
    InputRecord,
    Predictions,
    Report,
    RunInfo,
    SealedPredictions,
    StepRecord,
    VariantRecord,
)

log = logging.getLogger("vmlab")

ARTIFACTS = "artifacts"
_MARKER = ".vmlab-artifacts"


class StepTimeout(BackendError):
    """A step ran past its `timeout_s`."""


@dataclass
class RunRequest:
    """What the user asked for; `sets` is STEP -> KEY -> value, `inputs` NAME -> path as typed."""

    lab: str
    tasks: list[str] | None = None
    steps: list[str] | None = None
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, Path] = field(default_factory=dict)
    student: str | None = None
    output: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    predictions: Path | None = None  # the sealed file of `vmlab lab predict`, recorded in the report


@dataclass
class RunOutcome:
    report: Report
    path: Path

    @property
    def exit_code(self) -> int:
        """0 when every step ran; 3 when some step was skipped or failed (the report is not whole)."""
        return 0 if all(s.status == "ok" for s in self.report.steps.values()) else 3


@dataclass
class _Plan:
    lab: Lab
    steps: list[str]
    tasks: list[str]
    runners: dict[str, Callable[..., Mapping[str, ExperimentEntry]]]
    params: dict[str, StepParams]
    sealed: SealedPredictions | None = None
    variant: VariantRecord | None = None
    overridden: list[str] = field(default_factory=list)  # variant parameters a --set replaced


# ---- validation: nothing is created until all of it passes ----------------------------------------


def params_model(fn: Callable[..., Any], spec: str) -> type[StepParams]:
    """The parameter model a runner declares on its first argument."""
    first = next(iter(inspect.signature(fn).parameters), None)
    hints = typing.get_type_hints(fn) if first else {}
    model = hints.get(first) if first else None
    if not (isinstance(model, type) and issubclass(model, StepParams)):
        raise UsageError(f"runner {spec!r}: its first argument must be annotated with a StepParams model")
    return model


def select_steps(lab: Lab, tasks: list[str] | None, steps: list[str] | None) -> tuple[list[str], list[str]]:
    task_ids = [t.id for t in lab.tasks]
    for wanted in tasks or []:
        if wanted not in task_ids:
            raise UsageError(
                f"lab {lab.lab.name!r} has no task {wanted!r}", hint=f"choose from {', '.join(task_ids)}"
            )
    for s in steps or []:
        if s not in lab.experiments:
            raise UsageError(
                f"lab {lab.lab.name!r} has no step {s!r}", hint=f"choose from {', '.join(lab.experiments)}"
            )
    chosen_tasks = list(tasks) if tasks else ([] if steps else task_ids)
    ordered: list[str] = []
    for task in lab.tasks:
        if task.id in chosen_tasks:
            ordered += [e for e in task.experiments if e not in ordered]
    if steps:
        ordered += [s for s in steps if s not in ordered]
    elif not tasks:
        ordered += [e for e in lab.experiments if e not in ordered]
    return ordered, chosen_tasks


def _validate_params(step_id: str, model: type[StepParams], values: dict[str, Any]) -> StepParams:
    try:
        return model.model_validate(values)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "<params>"
        keys = ", ".join(model.model_fields) or "none"
        if first["type"] == "extra_forbidden":
            raise UsageError(
                f"step {step_id!r}: {key} is not a parameter", hint=f"valid keys of {step_id}: {keys}"
            ) from None
        raise UsageError(
            f"step {step_id!r}: {key}: {first['msg'].lower()}",
            hint=f"give {step_id}.{key} a valid value (lab.toml or --set)",
        ) from None


def plan_run(req: RunRequest) -> _Plan:
    lab = load_lab(req.lab)
    steps, tasks = select_steps(lab, req.tasks, req.steps)
    for step_id in req.sets:
        if step_id not in lab.experiments:
            raise UsageError(
                f"--set {step_id}.…: lab {req.lab!r} has no step {step_id!r}",
                hint=f"steps: {', '.join(lab.experiments)}",
            )
        if step_id not in steps:
            raise UsageError(
                f"--set {step_id}.…: step {step_id!r} is not part of this run",
                hint=f"set one of this run's steps: {', '.join(steps) or 'none'}; "
                f"or add the task of {step_id} with --task",
            )
    for name, path in req.inputs.items():
        if name not in lab.inputs:
            known = ", ".join(lab.inputs) or "none"
            raise UsageError(
                f"--input {name}=…: lab {req.lab!r} has no input {name!r} (inputs: {known})",
                hint=_input_hint(list(lab.inputs)),
            )
        decl = lab.inputs[name]
        _check_input(name, decl.kind, decl.suffixes, path, decl.default)
    sealed = _check_answers(lab, req)
    variant, fixed = _variant(lab, req.student)
    runners: dict[str, Callable[..., Mapping[str, ExperimentEntry]]] = {}
    params: dict[str, StepParams] = {}
    overridden: list[str] = []
    for step_id in steps:
        step = lab.experiments[step_id]
        fn = resolve(step.runner)
        runners[step_id] = fn
        sets = req.sets.get(step_id, {})
        overridden += [f"{step_id}.{k}" for k in fixed.get(step_id, {}) if k in sets]
        merged = {**step.params, **fixed.get(step_id, {}), **sets}
        params[step_id] = _validate_params(step_id, params_model(fn, step.runner), merged)
    return _Plan(
        lab=lab,
        steps=steps,
        tasks=tasks,
        runners=runners,
        params=params,
        sealed=sealed,
        variant=variant,
        overridden=overridden,
    )


def _variant(lab: Lab, student: str | None) -> tuple[VariantRecord | None, dict[str, dict[str, Any]]]:
    """The student's variant (vmlab.labs.variants) and what it sets in each step's parameters."""
    from vmlab.labs.variants import derive, step_settings, term_of

    if lab.variants is None:
        return None, {}
    values = derive(lab, student)
    return VariantRecord(term=term_of(lab), values=values), step_settings(lab, values)


def _check_answers(lab: Lab, req: RunRequest) -> SealedPredictions | None:
    """The answers input parses (one line and exit 2 when not, before anything is made), and the sealed
    predictions, when given, are this lab's; how they compare with the answers is the grader's."""
    from vmlab.check.answers import read_answers, read_sealed

    given = req.inputs.get(ANSWERS_INPUT)
    decl = lab.inputs.get(ANSWERS_INPUT)
    if given is None and decl is not None and decl.default is not None:
        given = lab_path(req.lab).parent / decl.default
    if lab.questions and given is not None and given.is_file():
        read_answers(given, lab)
    if req.predictions is None:
        return None
    if not lab.questions:
        raise UsageError(f"--predictions: lab {req.lab!r} asks no questions", hint="drop --predictions")
    if given is None:
        raise UsageError(
            "--predictions needs the answers they were sealed from",
            hint=f"add --input {ANSWERS_INPUT}=FILE (the file you sealed with 'vmlab lab predict')",
        )
    return read_sealed(req.predictions, lab)


def _warn_seal(lab: Lab, report: Report, say: Callable[[str], None]) -> None:
    """Say at once when the sealed numbers are not the answers' (the grader fails the `answers` check)."""
    from vmlab.check.answers import seal_differences

    preds = report.predictions
    if preds is None or preds.sealed is None:
        return
    diffs = seal_differences(preds.sealed, lab, preds.answers)
    if diffs:
        say(f"{lab.lab.name}: warning: the sealed predictions differ from the answers ({diffs[0]})")


def _say_variant(lab: Lab, req: RunRequest, plan: _Plan, say: Callable[[str], None]) -> None:
    if plan.variant is None:
        return
    name = lab.lab.name
    if not req.student:
        say(
            f"{name}: no student id: this runs the anonymous variant, which grades as nobody's; "
            "give --student ID (or set VMLAB_STUDENT) for your own"
        )
    for target in plan.overridden:
        say(f"{name}: warning: --set {target} replaces your variant's value: the `variant` check will fail")


def _predictions(
    lab: Lab, inputs: dict[str, InputRecord], paths: dict[str, Path], sealed: SealedPredictions | None
) -> Predictions | None:
    """The answers as recorded (parsed from the copy in artifacts/, whose sha256 the record holds)."""
    from vmlab.check.answers import read_answers

    if not lab.questions or ANSWERS_INPUT not in inputs:
        return None
    answers = read_answers(paths[ANSWERS_INPUT], lab)
    return Predictions(sha256=inputs[ANSWERS_INPUT].sha256, answers=answers, sealed=sealed)


def _input_hint(names: list[str]) -> str:
    if not names:
        return "drop --input: this lab takes none"
    if len(names) == 1:
        return f"use --input {names[0]}=PATH"
    return f"use --input NAME=PATH with NAME one of {', '.join(names)}"


def _check_input(name: str, kind: str, suffixes: list[str], path: Path, default: str | None = None) -> None:
    """The student's file or folder exists, is of the declared kind and can be read: found here, before
    anything is made, rather than as a traceback while it is copied."""
    noun = "file" if kind == "file" else "folder"
    if not path.exists():
        dangling = f" (a symlink to {os.readlink(path)}, which does not exist)" if path.is_symlink() else ""
        fallback = f"; without --input {name} the lab uses {default}" if default else ""
        raise UsageError(
            f"--input {name}={path}: no such {noun}{dangling}", hint=f"give the path of your {noun}{fallback}"
        )
    if kind == "file" and path.is_dir():
        raise UsageError(f"--input {name}={path}: expected a file, this is a folder")
    if kind == "dir" and not path.is_dir():
        raise UsageError(f"--input {name}={path}: expected a folder, this is a file")
    if kind == "file" and not path.is_file():
        raise UsageError(f"--input {name}={path}: expected a file, this is a FIFO, socket or device")
    if kind == "file" and suffixes and path.suffix not in suffixes:
        raise UsageError(f"--input {name}={path}: expected a {' or '.join(suffixes)} file")
    if not os.access(path, os.R_OK | (os.X_OK if kind == "dir" else 0)):
        raise UsageError(f"--input {name}={path}: cannot read this {noun}: permission denied")


# ---- inputs and provenance ------------------------------------------------------------------------


def _prepare_artifacts(directory: Path) -> None:
    """Start an empty artifacts folder; never wipe one vmlab did not make."""
    if directory.exists() and any(directory.iterdir()):
        if not (directory / _MARKER).exists():
            raise UsageError(
                f"{directory} exists and was not written by vmlab",
                hint="write the report to another folder (-o DIR/report.json)",
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / _MARKER).write_text("written by vmlab; replaced on the next run into this folder\n")


def record_input(name: str, kind: str, src: Path, source: str, artifacts: Path) -> tuple[InputRecord, Path]:
    """Copy an input under artifacts/inputs/<name>/ and describe it by relative name, size and sha256."""
    import hashlib

    dest_root = artifacts / "inputs" / name
    dest_root.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        dest = dest_root / src.name
        shutil.copyfile(src, dest)
        return (
            InputRecord(
                name=src.name,
                kind="file",
                source=source,  # type: ignore[arg-type]
                size=dest.stat().st_size,
                files=1,
                sha256=sha256_file(dest),
                artifact=dest.relative_to(artifacts.parent).as_posix(),
            ),
            dest,
        )
    dest = dest_root / src.name
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"))
    files = sorted(p for p in dest.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in files:  # a folder's hash covers each file's relative name and content
        h.update(p.relative_to(dest).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return (
        InputRecord(
            name=src.name,
            kind="dir",
            source=source,  # type: ignore[arg-type]
            size=sum(p.stat().st_size for p in files),
            files=len(files),
            sha256=h.hexdigest(),
            artifact=dest.relative_to(artifacts.parent).as_posix(),
        ),
        dest,
    )


def vmlab_commit() -> tuple[str | None, bool | None]:
    """The git commit of the running vmlab when it runs from a checkout, and whether it is modified."""
    src = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None:
        return None, None

    def git(*args: str) -> str | None:
        try:
            p = subprocess.run(
                ["git", "-C", str(src), *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return p.stdout.strip() if p.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return commit, (bool(status) if status is not None else None)


def _scrub(value: Any, home: str) -> Any:
    """Replace the user's home directory in every string by ~, so no report leaks it."""
    if isinstance(value, str):
        return value.replace(home, "~") if home and home != "/" else value
    if isinstance(value, dict):
        return {k: _scrub(v, home) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, home) for v in value]
    return value


# ---- running --------------------------------------------------------------------------------------


def step_timeout(seconds: float | None, step_id: str) -> AbstractContextManager[None]:
    """The step's own cleanup (context managers) runs when the limit fires."""
    return time_limit(
        seconds,
        lambda: StepTimeout(
            f"step {step_id!r} ran longer than its timeout of {seconds:g} s",
            hint=f"raise timeout_s of [experiments.{step_id}] in lab.toml",
        ),
    )


def _default_output(run_id: str) -> Path:
    from vmlab.paths import run_dir

    return run_dir(run_id) / "report.json"


_ELSEWHERE = "write the report elsewhere with -o DIR/report.json"
_HOME_FIX = "set VMLAB_HOME to a writable folder"


def _prepare_outputs(
    lab: Lab, req: RunRequest, scratch: Path, artifacts: Path, path: Path
) -> tuple[dict[str, InputRecord], dict[str, Path]]:
    """Stage the inputs in the run's scratch, then fill a fresh artifacts/ beside the report.

    Inputs are staged before the artifacts folder is emptied: a student may re-run from a hand-in,
    giving a file that lies in the very artifacts/ this run replaces. Every write fault is one
    OutputError naming the folder (VMLAB_HOME's for staging, the report's for artifacts).
    """
    from vmlab.errors import LabError
    from vmlab.report.io import writing

    lab_dir = lab_path(req.lab).parent
    staged: dict[str, tuple[Path, str]] = {}
    for name, decl in lab.inputs.items():
        given = req.inputs.get(name)
        src, source = (given, "student") if given is not None else (None, "default")
        if src is None and decl.default is not None:
            src = lab_dir / decl.default
            if not src.exists():
                raise LabError(f"lab {req.lab!r}: the default of input {name!r}, {src}, is missing")
        if src is None:
            continue
        stage = scratch / "inputs" / name / src.name
        with writing(stage.parent, elsewhere=_HOME_FIX, needed=_bytes_of(src)):
            stage.parent.mkdir(parents=True, exist_ok=True)
            try:
                if decl.kind == "file":
                    shutil.copyfile(src, stage)
                else:
                    shutil.copytree(src, stage, dirs_exist_ok=True)
            except OSError:  # the half copy goes first, so the error's free space is the disk's own
                shutil.rmtree(stage.parent, ignore_errors=True)
                raise
        staged[name] = (stage, source)
    inputs: dict[str, InputRecord] = {}
    input_paths: dict[str, Path] = {}
    needed = sum(_bytes_of(stage) for stage, _ in staged.values())
    with writing(artifacts, elsewhere=_ELSEWHERE, needed=needed or None):
        path.parent.mkdir(parents=True, exist_ok=True)
        _prepare_artifacts(artifacts)
        for name, (stage, source) in staged.items():
            kind = lab.inputs[name].kind
            inputs[name], input_paths[name] = record_input(name, kind, stage, source, artifacts)
    shutil.rmtree(scratch / "inputs", ignore_errors=True)
    return inputs, input_paths


def _bytes_of(path: Path) -> int:
    """A file's size, or a folder's files' sizes added up: what copying it takes on disk (about)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def run_lab(req: RunRequest, progress: Callable[[str], None] | None = None) -> RunOutcome:
    """Validate, then run the steps one by one, writing the report after each; see the module doc."""
    from vmlab.host.fingerprint import host_info
    from vmlab.host.requirements import Unmet, unmet
    from vmlab.paths import new_run_id, run_dir, usable_home
    from vmlab.report.io import probe_writable, save_report

    say = progress or log.info
    plan = plan_run(req)
    lab = plan.lab
    usable_home()  # every run's scratch lives there, with -o or without: checked before anything is made
    rid = new_run_id()
    given = req.output.absolute() if req.output is not None else None
    if given is not None and given.is_dir():
        raise UsageError(f"-o {req.output}: is a folder; give a file name such as {given / 'report.json'}")
    if given is not None:
        probe_writable(given, elsewhere=_ELSEWHERE)  # a read-only or full -o: one line, old files kept
    path = given or _default_output(rid).absolute()
    artifacts = path.parent / ARTIFACTS
    ours = not artifacts.exists() or (artifacts / _MARKER).exists()
    scratch = run_dir(rid)
    try:
        inputs, input_paths = _prepare_outputs(lab, req, scratch, artifacts, path)
        commit, dirty = vmlab_commit()
        home = str(Path.home())
        host = host_info(tuple(lab.lab.tools))
        steps = {
            s: StepRecord(
                status="not_run",
                params=plan.params[s].model_dump(mode="json"),
                requires=lab.experiments[s].requires,
            )
            for s in plan.steps
        }
        report = Report(
            vmlab_version=__version__,
            lab=lab.lab.name,
            run_id=rid,
            created_at=dt.datetime.now(dt.UTC),
            host=host.model_copy(update={"accel": None, "accel_reason": None}),
            run=RunInfo(
                student=req.student or None,
                vmlab_commit=commit,
                vmlab_dirty=dirty,
                lab_sha256=lab_sha256(req.lab),
                tasks=plan.tasks,
                status="partial",
                variant=plan.variant,
            ),
            params=_scrub({k: v for k, v in req.options.items() if _jsonable(v)}, home),
            steps=steps,
            inputs=inputs,
            predictions=_predictions(lab, inputs, input_paths, plan.sealed),
        )
        save_report(report, path)
        _warn_seal(lab, report, say)
        _say_variant(lab, req, plan, say)
    except BaseException:  # nothing ran yet: leave no half-made run behind (the old report is intact)
        shutil.rmtree(scratch / "inputs", ignore_errors=True)
        if ours and (artifacts / _MARKER).exists():
            shutil.rmtree(artifacts, ignore_errors=True)
        with contextlib.suppress(OSError):
            scratch.rmdir()
        raise

    experiments: dict[str, ExperimentEntry] = {}
    probed: dict[str, Unmet | None] = {}
    accel: tuple[str, str] | None = None
    interrupted = False
    for step_id in plan.steps:
        step = lab.experiments[step_id]
        record = steps[step_id]
        missing = unmet(step.requires, probed)
        if missing:
            record.status, record.message = "skipped", "; ".join(m.one_line() for m in missing)
            say(f"{lab.lab.name}: {step_id} skipped: {record.message}")
            report = _updated(report, steps, experiments, path)
            continue
        ctx = StepContext(
            run_id=rid,
            lab=lab.lab.name,
            step_id=step_id,
            scratch=scratch,
            artifacts_dir=artifacts,
            report_dir=path.parent,
            inputs={n: p for n, p in input_paths.items() if n in step.inputs},
            options=dict(req.options),
            progress=say,
        )
        say(f"{lab.lab.name}: running {step_id}")
        record.started_at = dt.datetime.now(dt.UTC)
        report = _updated(report, steps, experiments, path, accel=accel)
        t0 = time.monotonic()
        try:
            with step_timeout(step.timeout_s, step_id):
                produced = dict(plan.runners[step_id](plan.params[step_id], ctx))
            record.status = "ok"
        except KeyboardInterrupt:
            record.status, record.message = "interrupted", "interrupted by Ctrl-C"
            produced = {}
            interrupted = True
        except PartialFailure as e:  # what the step measured before it failed is kept
            record.status, record.message = "error", e.one_line()
            produced = dict(_entries(e.partial))
        except VmlabError as e:
            record.status, record.message = "error", e.one_line()
            produced = {}
        except Exception as e:  # a fault in one step must not lose the others
            log.debug("step %s raised", step_id, exc_info=True)
            record.status, record.message = "error", f"{type(e).__name__}: {e}"
            produced = {}
        record.duration_s = round(time.monotonic() - t0, 6)
        if record.status == "error":
            say(f"{lab.lab.name}: {step_id} failed: {record.message}")
        produced = _scrub_entries(produced, home)
        record.experiments = list(produced)
        record.artifacts = ctx.artifacts
        experiments.update(produced)
        if ctx.accel is not None:
            accel = ctx.accel
        report = _updated(report, steps, experiments, path, accel=accel)
        if interrupted:
            break

    status = (
        "interrupted"
        if interrupted
        else ("complete" if all(s.status == "ok" for s in steps.values()) else "partial")
    )
    report = report.model_copy(
        update={
            "run": report.run.model_copy(update={"status": status, "finished_at": dt.datetime.now(dt.UTC)})
        }
    )
    _save_kept(report, path)
    if scratch != path.parent:
        with contextlib.suppress(OSError):
            scratch.rmdir()  # only when the steps left nothing there: a run's scratch is not kept empty
    if interrupted:
        raise KeyboardInterrupt
    return RunOutcome(report=report, path=path)


def _entries(partial: dict[str, object]) -> dict[str, ExperimentEntry]:
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


def _scrub_entries(produced: dict[str, ExperimentEntry], home: str) -> dict[str, ExperimentEntry]:
    from pydantic import TypeAdapter

    adapter: TypeAdapter[ExperimentEntry] = TypeAdapter(ExperimentEntry)
    out: dict[str, ExperimentEntry] = {}
    for key, entry in produced.items():
        raw = adapter.dump_python(entry, mode="json")
        out[key] = adapter.validate_python(_scrub(raw, home))
    return out


def _updated(
    report: Report,
    steps: dict[str, StepRecord],
    experiments: dict[str, ExperimentEntry],
    path: Path,
    *,
    accel: tuple[str, str] | None = None,
) -> Report:
    artifacts = [a for s in steps.values() for a in s.artifacts]
    host = report.host
    if accel is not None:
        host = host.model_copy(update={"accel": accel[0], "accel_reason": accel[1]})
    new = report.model_copy(
        update={
            "steps": {k: v.model_copy() for k, v in steps.items()},
            "experiments": dict(experiments),
            "artifacts": artifacts,
            "host": host,
        }
    )
    _save_kept(new, path)
    return new


def _save_kept(report: Report, path: Path) -> None:
    """Rewrite the report during a run; when the write fails (a disk filling up), the report last
    written is still whole at `path`, and the error says so on its second line."""
    from vmlab.errors import OutputError
    from vmlab.report.io import save_report

    try:
        save_report(report, path)
    except OutputError as e:
        e.partial_report = str(path)
        raise


def _jsonable(v: Any) -> bool:
    return isinstance(v, str | int | float | bool | list | dict | type(None)) and not isinstance(v, BaseModel)
