"""Find labs, run their steps, assemble the report.

A step's runner is a function `run(params: dict[str, Any], ctx: RunContext) -> dict[str, ExperimentEntry]`
named "module:function"; what it returns is merged into report.experiments. Runners are imported only
when a step runs, so a lab that needs libvirt never breaks one that does not.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vmlab import __version__
from vmlab.errors import LabError
from vmlab.labs.model import Lab, parse_lab
from vmlab.paths import new_run_id, run_dir
from vmlab.report.model import ExperimentEntry, Report

log = logging.getLogger("vmlab")


@dataclass
class RunContext:
    """What a step may know about the run it belongs to."""

    run_id: str
    run_dir: Path
    lab: str
    step_id: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] = log.info


class StepRunner(Protocol):
    def __call__(self, params: dict[str, Any], ctx: RunContext) -> Mapping[str, ExperimentEntry]: ...


def labs_root() -> Path:
    """labs/ of the checkout (VMLAB_LABS overrides, for installed copies)."""
    env = os.environ.get("VMLAB_LABS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "labs"


def lab_names() -> list[str]:
    root = labs_root()
    return sorted(p.parent.name for p in root.glob("*/lab.toml"))


def lab_path(name: str) -> Path:
    p = labs_root() / name / "lab.toml"
    if not p.is_file():
        known = ", ".join(lab_names()) or "none"
        raise LabError(f"no lab named {name!r} (known: {known})", hint="run 'vmlab lab ls'")
    return p


def load_lab(name: str) -> Lab:
    return parse_lab(lab_path(name))


def resolve_runner(spec: str) -> StepRunner:
    module_name, _, func_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise LabError(f"runner {spec!r}: cannot import {module_name}: {e}") from None
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise LabError(f"runner {spec!r}: {module_name} has no function {func_name}")
    return fn  # type: ignore[no-any-return]


def steps_for(lab: Lab, task: str | None) -> list[str]:
    if task is None:
        ordered: list[str] = []
        for t in lab.tasks:
            ordered += [e for e in t.experiments if e not in ordered]
        ordered += [e for e in lab.experiments if e not in ordered]
        return ordered
    for t in lab.tasks:
        if t.id == task:
            return list(t.experiments)
    known = ", ".join(t.id for t in lab.tasks)
    raise LabError(f"lab {lab.lab.name!r} has no task {task!r} (tasks: {known})")


def run_lab(
    name: str,
    *,
    task: str | None = None,
    options: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Run a lab's steps (all, or one task's) and return the ungraded report."""
    lab = load_lab(name)
    rid = run_id or new_run_id()
    rdir = run_dir(rid)
    opts = dict(options or {})
    experiments: dict[str, ExperimentEntry] = {}
    for step_id in steps_for(lab, task):
        step = lab.experiments[step_id]
        ctx = RunContext(run_id=rid, run_dir=rdir, lab=name, step_id=step_id, options=opts)
        if progress is not None:
            ctx.progress = progress
        ctx.progress(f"{name}: running {step_id}")
        params = {**step.params, **opts.get("params", {}).get(step_id, {})}
        experiments.update(resolve_runner(step.runner)(params, ctx))
    return make_report(name, rid, experiments, opts)


def make_report(
    lab: str, run_id: str, experiments: dict[str, ExperimentEntry], params: Mapping[str, Any]
) -> Report:
    """A fresh, ungraded report with this host's fingerprint."""
    from vmlab.host.fingerprint import host_info

    return Report(
        vmlab_version=__version__,
        lab=lab,
        run_id=run_id,
        created_at=dt.datetime.now(dt.UTC),
        host=host_info(),
        params={k: v for k, v in params.items() if _jsonable(v)},
        experiments=experiments,
    )


def _jsonable(v: Any) -> bool:
    return isinstance(v, str | int | float | bool | list | dict | type(None))
