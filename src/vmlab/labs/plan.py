"""Plan a run: everything the user typed (tasks, steps, `--set` keys and types, inputs, answers,
sealed predictions) is checked against the lab before any folder is made, so bad input costs nothing.

The lab is read here once (lab.toml parsed, the name resolved to its folder, the rules' digest taken);
every later stage of the run reads the plan's `Lab`, never the catalog again.
"""

from __future__ import annotations

import inspect
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vmlab.backends.context import RunContext
from vmlab.errors import UsageError
from vmlab.labs.catalog import load_lab, resolve
from vmlab.labs.step import StepParams
from vmlab.report.model import ExperimentEntry, SealedPredictions, VariantRecord
from vmlab.spec.lab import Lab
from vmlab.spec.questions import ANSWERS_INPUT

Runner = Callable[..., Mapping[str, ExperimentEntry]]


@dataclass
class RunRequest:
    """What the user asked for; `sets` is STEP -> KEY -> value, `inputs` NAME -> path as typed.

    `context` holds the run-wide choices that are no step's parameter (the libvirt URI of `-c`, the
    runtimes, the accelerator): typed, validated where the CLI builds it, read by the steps as
    `ctx.run`."""

    lab: str
    tasks: list[str] | None = None
    steps: list[str] | None = None
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, Path] = field(default_factory=dict)
    student: str | None = None
    output: Path | None = None
    context: RunContext = field(default_factory=RunContext)
    predictions: Path | None = None  # the sealed file of `vmlab lab predict`, recorded in the report


@dataclass
class Plan:
    """A run that passed every check: the lab as loaded, the steps in order with their runners and
    validated parameters, the student's variant and sealed predictions."""

    lab: Lab
    steps: list[str]
    tasks: list[str]
    runners: dict[str, Runner]
    params: dict[str, StepParams]
    sealed: SealedPredictions | None = None
    variant: VariantRecord | None = None
    overridden: list[str] = field(default_factory=list)  # variant parameters a --set replaced


def params_model(fn: Callable[..., Any], spec: str) -> type[StepParams]:
    """The parameter model a runner declares on its first argument."""
    first = next(iter(inspect.signature(fn).parameters), None)
    hints = typing.get_type_hints(fn) if first else {}
    model = hints.get(first) if first else None
    if not (isinstance(model, type) and issubclass(model, StepParams)):
        raise UsageError(f"runner {spec!r}: its first argument must be annotated with a StepParams model")
    return model


def select_steps(lab: Lab, tasks: list[str] | None, steps: list[str] | None) -> tuple[list[str], list[str]]:
    """The steps to run, in task order, and the tasks chosen (every task when neither is given)."""
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


def validate_params(step_id: str, model: type[StepParams], values: dict[str, Any]) -> StepParams:
    """A step's parameters, or one usage error naming the key and the valid keys."""
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


def plan_run(req: RunRequest, lab: Lab | None = None) -> Plan:
    """Check the request against the lab (loaded here unless given) and resolve every runner."""
    lab = lab if lab is not None else load_lab(req.lab)
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
                hint=input_hint(list(lab.inputs)),
            )
        decl = lab.inputs[name]
        check_input(name, decl.kind, decl.suffixes, path, decl.default)
    sealed = _check_answers(lab, req)
    variant, fixed = _variant(lab, req.student)
    runners: dict[str, Runner] = {}
    params: dict[str, StepParams] = {}
    overridden: list[str] = []
    for step_id in steps:
        step = lab.experiments[step_id]
        fn = resolve(step.runner)
        runners[step_id] = fn
        sets = req.sets.get(step_id, {})
        overridden += [f"{step_id}.{k}" for k in fixed.get(step_id, {}) if k in sets]
        merged = {**step.params, **fixed.get(step_id, {}), **sets}
        params[step_id] = validate_params(step_id, params_model(fn, step.runner), merged)
    return Plan(
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
    """The student's variant (vmlab.spec.variants) and what it sets in each step's parameters."""
    from vmlab.spec.variants import derive, step_settings, term_of

    if lab.variants is None:
        return None, {}
    values = derive(lab, student)
    return VariantRecord(term=term_of(lab), values=values), step_settings(lab, values)


def answers_path(lab: Lab, req: RunRequest) -> Path | None:
    """The answers file of this run: the one given, else the lab's default (None when neither)."""
    given = req.inputs.get(ANSWERS_INPUT)
    decl = lab.inputs.get(ANSWERS_INPUT)
    if given is None and decl is not None and decl.default is not None:
        given = lab.folder / decl.default
    return given


def _check_answers(lab: Lab, req: RunRequest) -> SealedPredictions | None:
    """The answers input parses (one line and exit 2 when not, before anything is made), and the sealed
    predictions, when given, are this lab's; how they compare with the answers is the grader's."""
    from vmlab.spec.answers import read_answers, read_sealed

    given = answers_path(lab, req)
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


def input_hint(names: list[str]) -> str:
    if not names:
        return "drop --input: this lab takes none"
    if len(names) == 1:
        return f"use --input {names[0]}=PATH"
    return f"use --input NAME=PATH with NAME one of {', '.join(names)}"


def check_input(name: str, kind: str, suffixes: list[str], path: Path, default: str | None = None) -> None:
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
