"""What a measurement lab's re-run reads and runs: its `[rerun] params` (MeasureParams), paths into a
report's experiments with `*` for every member, and one run of the lab's steps in a temporary folder.
Shared by the re-run (vmlab.grade.remeasure) and the runner's baseline (vmlab.grade.calibration)."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from vmlab.errors import UsageError
from vmlab.spec.paths import ParsedPath, parse_path

if TYPE_CHECKING:
    from vmlab.report.model import Report
    from vmlab.spec.lab import Lab


# parameters that say how often a figure is measured, not what: the calibration's may differ
REPEAT_KEYS = frozenset({"runs", "repeats", "warmup"})


class MeasureParams(BaseModel):
    """A measurement lab's `[rerun] params`.

    `steps`: the steps re-measured (each only when the report ran it fine). `set`: parameters forced for
    the re-run to keep it short (STEP -> KEY -> value); only keys that change how often, not what, is
    measured, so the exact figures do not depend on them. `exact`: paths whose values must be equal;
    `keys`: paths whose member names must be equal; a segment `*` stands for every member the report
    has. `timed`: paths of timed figures (their medians), compared with the calibration. `platform`:
    host fields (`os`, `arch`, ...) or recorded tool versions that must be the same as the runner's for
    the exact values to be comparable at all (instruction counts depend on the compiler and the C
    library); when one differs, the exact checks are skipped with the reason. `rel_tol`: how far an
    exact number may be from the report's (0: equal), for counts that the environment moves a little
    (ld.so and libc walk the environment and the program's path before main). `vary`: STEP ->
    parameters a student may set to other values than lab.toml's (besides REPEAT_KEYS); any other
    recorded difference fails `rerun:params[STEP]`, and the step is not re-run.
    """

    model_config = ConfigDict(extra="forbid")
    steps: list[str] = Field(min_length=1)
    set: dict[str, dict[str, Any]] = Field(default_factory=dict)
    exact: list[str] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)
    timed: list[str] = Field(default_factory=list)
    platform: list[str] = Field(default_factory=list)
    rel_tol: float = Field(0.0, ge=0, lt=1)
    vary: dict[str, list[str]] = Field(default_factory=dict)


# ---- paths with `*` --------------------------------------------------------------------------------


def segments(path: str) -> list[str]:
    """A path's segments, in the checks' path syntax (vmlab.spec.paths), `*` being one of them."""
    return list(parse_path(path).segments)


def _shown(parts: list[str]) -> str:
    return str(ParsedPath(tuple(parts), envelope=False))


def expand(tree: Any, path: str) -> dict[str, Any]:
    """Every concrete path the pattern names in `tree` (a report's experiments as JSON) -> its node."""
    found: dict[str, Any] = {}

    def walk(node: Any, rest: list[str], done: list[str]) -> None:
        if not rest:
            found[_shown(done)] = node
            return
        head, tail = rest[0], rest[1:]
        if not isinstance(node, dict):
            return
        if head == "*":
            for k in sorted(node):
                walk(node[k], tail, [*done, k])
        elif head in node:
            walk(node[head], tail, [*done, head])

    walk(tree, segments(path), [])
    return found


def at(tree: Any, path: str) -> tuple[bool, Any]:
    node = tree
    for part in segments(path):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def median_of(node: Any) -> float | None:
    """A timed figure's median: an experiment's summary median, or a plain number."""
    if isinstance(node, dict):
        node = (node.get("summary") or {}).get("median")
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node) or node <= 0:
        return None
    return float(node)


def experiments_json(report: Report) -> dict[str, Any]:
    return {k: v for k, v in report.model_dump(mode="json")["experiments"].items()}


def measure_params(lab: Lab) -> MeasureParams:
    from pydantic import ValidationError

    from vmlab.errors import LabError

    if lab.rerun is None:
        raise UsageError(f"lab {lab.lab.name!r} declares no [rerun] section", hint="nothing to re-measure")
    try:
        p = MeasureParams.model_validate(lab.rerun.params)
    except ValidationError as e:
        raise LabError(f"lab {lab.lab.name!r}: [rerun] params: {e.errors()[0]['msg']}") from None
    unknown = [s for s in [*p.steps, *p.set, *p.vary] if s not in lab.experiments]
    if unknown:
        raise LabError(f"lab {lab.lab.name!r}: [rerun] params names no step {', '.join(unknown)}")
    return p


def heads(patterns: list[str]) -> set[str]:
    return {segments(x)[0] for x in patterns}


@contextlib.contextmanager
def lab_run(
    lab: str,
    steps: list[str],
    sets: dict[str, dict[str, Any]],
    inputs: dict[str, Path],
    progress: Callable[[str], None] | None,
) -> Iterator[Report]:
    """One run of the lab's steps into a temporary folder, removed with the run's scratch afterwards."""
    from vmlab.labs.pipeline import RunRequest, run_lab
    from vmlab.paths import run_dir

    tmp = Path(tempfile.mkdtemp(prefix="vmlab-remeasure-"))
    run_id: str | None = None
    try:
        outcome = run_lab(
            RunRequest(lab=lab, steps=steps, sets=sets, inputs=inputs, output=tmp / "report.json"),
            progress=progress or (lambda _m: None),
        )
        run_id = outcome.report.run_id
        yield outcome.report
    finally:
        if run_id is None:  # Ctrl-C or a fault mid-run: the report written so far names the run
            with contextlib.suppress(OSError, ValueError, KeyError):
                run_id = str(json.loads((tmp / "report.json").read_text())["run_id"])
        shutil.rmtree(tmp, ignore_errors=True)
        if run_id:
            shutil.rmtree(run_dir(run_id), ignore_errors=True)


def param_names(lab: Lab, step: str) -> set[str]:
    from vmlab.labs.catalog import resolve
    from vmlab.labs.plan import params_model

    spec = lab.experiments[step].runner
    return set(params_model(resolve(spec), spec).model_fields)


def step_ok(report: Report, step: str) -> bool:
    rec = report.steps.get(step)
    return rec is not None and rec.status == "ok"
