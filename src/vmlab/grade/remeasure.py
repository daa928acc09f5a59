"""Re-measuring a measurement lab on the tutor's runner (`vmlab grade --rerun` for a lab whose
`[rerun]` says `where = "host"`) and the runner's own baseline (`vmlab grade calibrate`).

These labs' steps run vmlab's own runners (trusted code) on the student's parameters, so their re-run is
not a container run of the student's code: the lab's steps run again here, through the lab pipeline
(`run_lab`), with the parameters the report records (checked against what the runner accepts), into a
temporary folder that is removed afterwards. Student files a step reads (Jasmin classes, a workload,
an observer tool) are the hand-in's recorded copies, whose sha256 the report
lists; they are used exactly as the student's own run used them.

Then, per the lab's `[rerun] params` (`MeasureParams`):
- `exact` paths (counts, texts that do not depend on timing) and `keys` paths (structure: which stages,
  which members) must agree with the report: a check `rerun:exact[STEP]` of kind `rerun-claim`, since the
  report claims them (a mismatch zeroes the score and flags `rerun-mismatch`);
- `timed` paths (medians) are compared as ratios to the runner's calibrated baseline: the student's median
  over the baseline median against the re-measured median over it, within the lab's `tolerance` factor
  (`rerun:timing[PATH]`, a timing check: reported, never scored). Without a calibration of this host, one
  skipped check says to run `vmlab grade calibrate`.

A step that cannot run here (a requirement unmet, a daemon down, a time-out) is one `error` check: the
runner's fault, never the student's loss (the hand-in is held for review).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from vmlab.errors import BackendError, UsageError, VmlabError
from vmlab.spec.paths import ParsedPath, parse_path

if TYPE_CHECKING:
    from vmlab.grade.rerun import RerunContext
    from vmlab.report.model import CheckResult, Report
    from vmlab.spec.lab import Lab

# parameters that say how often a figure is measured, not what: the calibration's may differ
REPEAT_KEYS = frozenset({"runs", "repeats", "warmup"})
CALIBRATION_VERSION = 1


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


# ---- the ratio comparison ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RatioVerdict:
    """The student's median and the re-measured one, each over the runner's baseline median."""

    student: float  # student median / baseline
    runner: float  # re-measured median / baseline
    factor: float  # how far apart the two ratios are, >= 1
    ok: bool

    def measured(self) -> str:
        return f"x{self.student:.3g} of the runner's baseline"

    def expected(self, tolerance: float) -> str:
        return f"x{self.runner:.3g} (re-measured), within a factor {tolerance:g}"


def compare_ratio(student: float, runner: float, baseline: float, tolerance: float) -> RatioVerdict:
    """student/baseline against runner/baseline: they agree when neither is more than `tolerance` times
    the other. The baseline makes both figures comparable with the runner's own calibrated state."""
    if min(student, runner, baseline) <= 0 or tolerance < 1:
        raise ValueError("medians and the baseline must be positive and the tolerance >= 1")
    s, r = student / baseline, runner / baseline
    factor = max(s / r, r / s)
    return RatioVerdict(student=s, runner=r, factor=factor, ok=factor <= tolerance)


# ---- calibration ------------------------------------------------------------------------------------


def host_fingerprint() -> tuple[str, dict[str, Any]]:
    from vmlab.host.fingerprint import machine_fingerprint

    return machine_fingerprint()


class Calibration(BaseModel):
    """The runner's medians of a lab's timed figures, measured once by `vmlab grade calibrate`."""

    model_config = ConfigDict(extra="forbid")
    version: int = CALIBRATION_VERSION
    lab: str
    lab_sha256: str
    vmlab_version: str
    created_at: dt.datetime
    fingerprint: str
    host: dict[str, Any]
    params: dict[str, dict[str, Any]]  # the step parameters the medians were measured with
    medians: dict[str, float]


def calibration_path(lab: str) -> Path:
    from vmlab.paths import vmlab_home

    return vmlab_home() / "calibration" / f"{lab}.json"


def read_calibration(lab: str, path: Path | None = None) -> tuple[Calibration | None, str]:
    """This host's calibration of `lab`, or None and one line saying why it cannot be used."""
    from pydantic import ValidationError

    p = path or calibration_path(lab)
    fix = f"run `vmlab grade calibrate --lab {lab}` on this runner once"
    try:
        cal = Calibration.model_validate_json(p.read_bytes())
    except FileNotFoundError:
        return None, f"no calibration of this runner for {lab} ({p}): {fix}"
    except (OSError, ValidationError, ValueError) as e:
        return None, f"calibration {p} is unreadable ({type(e).__name__}): {fix}"
    fp, _ = host_fingerprint()
    if cal.lab != lab:
        return None, f"calibration {p} is of lab {cal.lab}: {fix}"
    if cal.fingerprint != fp:
        return None, f"calibration {p} was measured on another host ({cal.host.get('hostname', '?')}): {fix}"
    return cal, ""


def calibrate(
    lab_name: str,
    output: Path | None = None,
    runs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Calibration, Path]:
    """Run the lab's timed steps here with the lab's parameters (`runs`/`repeats` set to `runs` when
    given) and store the medians of its timed figures with this host's fingerprint."""
    from vmlab import __version__
    from vmlab.labs.catalog import lab_sha256, load_lab
    from vmlab.report.io import write_atomic, writing

    lab = load_lab(lab_name)
    p = measure_params(lab)
    if not p.timed:
        raise UsageError(f"lab {lab_name!r} declares no timed figures to calibrate", hint="nothing to do")
    steps = [s for s in p.steps if s in _heads(p.timed)] or list(p.steps)
    sets: dict[str, dict[str, Any]] = {}
    for s in steps:
        known = _param_names(lab, s)
        sets[s] = {k: runs for k in ("runs", "repeats") if runs is not None and k in known}
    fp, host = host_fingerprint()
    with _lab_run(lab_name, steps, sets, {}, progress) as report:
        bad = [
            f"{s}: {report.steps[s].message or report.steps[s].status}" for s in steps if not _ok(report, s)
        ]
        if bad:  # nothing is written: a baseline of a broken runner would mislead every re-run
            what = "; ".join(bad)
            hint = None if "(fix:" in what else "fix the runner (vmlab doctor), then calibrate again"
            raise BackendError(f"calibration of {lab_name} failed: {what}", hint=hint)
        tree = experiments_json(report)
        medians = {
            shown: m
            for pattern in p.timed
            for shown, node in expand(tree, pattern).items()
            if (m := median_of(node)) is not None
        }
        params = {s: report.steps[s].params for s in steps}
    cal = Calibration(
        lab=lab_name,
        lab_sha256=lab_sha256(lab_name),
        vmlab_version=__version__,
        created_at=dt.datetime.now(dt.UTC),
        fingerprint=fp,
        host=host,
        params=params,
        medians=medians,
    )
    dest = output or calibration_path(lab_name)
    elsewhere = "write it elsewhere with -o FILE"
    with writing(dest.parent, elsewhere=elsewhere):
        dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, cal.model_dump_json(indent=2) + "\n", elsewhere=elsewhere)
    return cal, dest


def run_calibration(
    lab_name: str, output: Path | None, runs: int | None, progress: Callable[[str], None]
) -> tuple[Calibration, Path]:
    """`vmlab grade calibrate`: the lab's `[rerun] calibrate` hook (a lab without one has no baseline)."""
    from vmlab.labs.catalog import load_lab, resolve, usable_labs

    lab = load_lab(lab_name)
    if lab.rerun is None or lab.rerun.calibrate is None:
        timed = [x.lab.name for x in usable_labs(lambda _m: None) if x.rerun and x.rerun.calibrate]
        raise UsageError(
            f"lab {lab_name!r} has no timed figures to calibrate (no [rerun] calibrate in its lab.toml)",
            hint=f"calibrate {', '.join(timed) or 'a lab whose [rerun] names a calibrate hook'}",
        )
    hook = resolve(lab.rerun.calibrate, "calibrate hook")
    cal, path = hook(lab_name, output, runs, progress)
    return cal, path


# ---- the re-run ---------------------------------------------------------------------------------------


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


def _heads(patterns: list[str]) -> set[str]:
    return {segments(x)[0] for x in patterns}


def _step_making(report: Report, steps: list[str], head: str) -> str | None:
    """The step whose record lists experiment `head` (a step may make experiments under other ids)."""
    return next((s for s in steps if head in report.steps[s].experiments), None)


def _param_names(lab: Lab, step: str) -> set[str]:
    from vmlab.labs.catalog import resolve
    from vmlab.labs.plan import params_model

    spec = lab.experiments[step].runner
    return set(params_model(resolve(spec), spec).model_fields)


def _ok(report: Report, step: str) -> bool:
    rec = report.steps.get(step)
    return rec is not None and rec.status == "ok"


def allowed_params(
    lab: Lab, report: Report, step: str, vary: list[str] | None = None
) -> tuple[dict[str, Any] | None, str]:
    """The parameters a step ran with, if the lab allows them: lab.toml's updated by what the report
    records, validated against the runner's parameter model, and equal to lab.toml's except for how
    often it measures (REPEAT_KEYS), the keys in `vary` (MeasureParams.vary) and those
    the lab's per-student `[variants]` set (whether they are this student's is the `variant` check's
    and `variant-mismatch`'s to say). None and why otherwise: the runner never runs a command line,
    image or file a hand-in names itself."""
    from pydantic import ValidationError

    from vmlab.labs.catalog import resolve
    from vmlab.labs.plan import params_model
    from vmlab.spec.variants import derive, step_settings

    rec = report.steps[step]
    spec = lab.experiments[step].runner
    model = params_model(resolve(spec), spec)
    base = model.model_validate(lab.experiments[step].params).model_dump(mode="json")
    try:
        got = model.model_validate({**lab.experiments[step].params, **rec.params}).model_dump(mode="json")
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or step
        return None, f"step {step}'s recorded parameter {where}: {err['msg']}"
    per_student = set(step_settings(lab, derive(lab, None)).get(step, {}))
    free = REPEAT_KEYS | set(vary or []) | per_student
    changed = sorted(k for k in got if k not in free and got[k] != base.get(k))
    if changed:
        shown = ", ".join(f"{k}={_short(got[k])}" for k in changed[:3])
        return None, f"step {step} ran with {shown}; the lab allows {_short(base[changed[0]])} there"
    return got, ""


@contextlib.contextmanager
def _lab_run(
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


def _platform_differs(lab: Lab, report: Report, names: list[str]) -> list[str]:
    from vmlab.host.fingerprint import host_info
    from vmlab.labs.tools import lab_tools

    declared = tuple(lab_tools(lab).values())
    here = host_info(tuple(n for n in names if n not in type(report.host).model_fields), declared)
    out = []
    for n in names:
        if n in type(report.host).model_fields:
            theirs, ours = getattr(report.host, n), getattr(here, n)
        else:
            theirs, ours = report.host.versions.get(n), here.versions.get(n)
        if theirs != ours:
            out.append(f"{n} {theirs} here {ours}")
    return out


def rerun_measurement(ctx: RerunContext, extra: list[str] | None = None) -> list[CheckResult]:
    """The generic re-run of a measurement lab; `extra` names further steps a lab hook adds."""
    from vmlab.host.requirements import unmet
    from vmlab.labs.tools import lab_tools

    lab, report = ctx.lab, ctx.report
    p = measure_params(lab)
    tasks = [t for t in lab.tasks if not report.run.tasks or t.id in report.run.tasks]
    graded = {s for t in tasks for s in t.experiments}
    steps = [s for s in dict.fromkeys([*p.steps, *(extra or [])]) if s in graded and _ok(report, s)]
    if not steps:
        return [ctx.check("steps", True, "the report ran none of the re-measured steps: nothing to re-run")]

    checks: list[CheckResult] = []
    sets: dict[str, dict[str, Any]] = {}
    for s in steps:
        params, why = allowed_params(lab, report, s, p.vary.get(s))
        if params is None:
            checks.append(ctx.check(f"params[{s}]", False, why, claimed=True, task=_task(lab, s)))
            continue
        sets[s] = {**params, **p.set.get(s, {})}
    runnable = list(sets)
    missing = unmet(sorted({r for s in runnable for r in lab.experiments[s].requires}), tools=lab_tools(lab))
    if missing:  # the runner's fault: held for review, not the student's loss
        what = "; ".join(m.one_line() for m in missing)
        return [*checks, ctx.check("runner", None, f"this runner cannot re-measure: {what}")]
    if not runnable:
        return checks

    names = sorted({n for s in runnable for n in lab.experiments[s].inputs})
    inputs = {n: ctx.inputs[n] for n in names if n in ctx.inputs}
    ctx.progress(f"{ctx.student}: re-measuring {', '.join(runnable)} on this runner")
    try:
        with _lab_run(lab.lab.name, runnable, sets, inputs, ctx.progress) as again:
            checks += _compare(ctx, p, runnable, again)
    except VmlabError as e:
        checks.append(ctx.check("runner", None, f"the re-measurement failed: {e.one_line()}"))
    return checks


def _task(lab: Lab, step: str) -> str | None:
    return next((t.id for t in lab.tasks if step in t.experiments), None)


def _compare(ctx: RerunContext, p: MeasureParams, steps: list[str], again: Report) -> list[CheckResult]:
    lab, report = ctx.lab, ctx.report
    mine, theirs = experiments_json(again), experiments_json(report)
    differs = _platform_differs(lab, report, p.platform) if p.platform else []
    checks: list[CheckResult] = []
    for s in steps:
        task = _task(lab, s)
        rec = again.steps[s]
        if rec.status != "ok":  # it ran fine for the student; here it did not: the runner's fault
            msg = f"step {s} {rec.status} on this runner: {rec.message}"
            checks.append(ctx.check(f"exact[{s}]", None, msg, task=task))
            continue
        ids = set(report.steps[s].experiments)
        exact = [x for x in p.exact if segments(x)[0] in ids or segments(x)[0] == "*"]
        keys = [x for x in p.keys if segments(x)[0] in ids or segments(x)[0] == "*"]
        if not exact and not keys:
            continue
        if differs:
            msg = f"recorded on another platform ({'; '.join(differs)}): exact counts are not comparable"
            checks.append(ctx.check(f"exact[{s}]", True, msg, task=task, skipped=True))
            continue
        compared, wrong = _exact_diffs(theirs, mine, exact, keys, ids, p.rel_tol)
        ok = not wrong
        checks.append(
            ctx.check(
                f"exact[{s}]",
                ok,
                "" if ok else "; ".join(wrong[:3]) + (f" (+{len(wrong) - 3} more)" if len(wrong) > 3 else ""),
                claimed=True,
                task=task,
                measured=f"{compared - len(wrong)} of {compared} agree",
                expected="the report's counts and structure, re-measured on this runner",
                description=f"step {s} re-measured: the same counts and structure as the report's",
            )
        )
    checks += _timings(ctx, p, steps, theirs, mine, again)
    return checks


def _exact_diffs(
    theirs: dict[str, Any],
    mine: dict[str, Any],
    exact: list[str],
    keys: list[str],
    ids: set[str],
    rel_tol: float = 0.0,
) -> tuple[int, list[str]]:
    compared = 0
    wrong: list[str] = []
    for pattern, structural in [*((x, False) for x in exact), *((x, True) for x in keys)]:
        for shown, value in expand(theirs, pattern).items():
            if segments(shown)[0] not in ids:
                continue
            compared += 1
            found, again = at(mine, shown)
            if structural:
                value = sorted(value) if isinstance(value, dict) else value
                again = sorted(again) if isinstance(again, dict) else again
            if not found:
                wrong.append(f"{shown}: the report has {_short(value)}, the re-run none")
            elif value != again and not _close(value, again, rel_tol):
                wrong.append(f"{shown}: the report has {_short(value)}, re-measured {_short(again)}")
    return compared, wrong


def _close(a: Any, b: Any, rel_tol: float) -> bool:
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
    return numbers and rel_tol > 0 and math.isclose(float(a), float(b), rel_tol=rel_tol)


def _short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _timings(
    ctx: RerunContext,
    p: MeasureParams,
    steps: list[str],
    theirs: dict[str, Any],
    mine: dict[str, Any],
    again: Report,
) -> list[CheckResult]:
    lab = ctx.lab
    ran_ok = [s for s in steps if again.steps[s].status == "ok"]
    timed = [(t, step) for t in p.timed if (step := _step_making(again, ran_ok, segments(t)[0])) is not None]
    if not timed:
        return []
    cal, why = read_calibration(lab.lab.name)
    if cal is None:
        return [ctx.check("timing", True, why, timing=True, skipped=True)]
    tol = ctx.spec.tolerance
    checks: list[CheckResult] = []
    for pattern, step in timed:
        task = _task(lab, step)
        ran = {k: v for k, v in (again.steps[step].params or {}).items() if k not in REPEAT_KEYS}
        base_params = {k: v for k, v in cal.params.get(step, {}).items() if k not in REPEAT_KEYS}
        for shown, node in expand(theirs, pattern).items():
            cid, desc = f"timing[{shown}]", f"{shown}: the report's median against this runner's, as ratios"
            s, base = median_of(node), cal.medians.get(shown)
            found, now_node = at(mine, shown)
            r = median_of(now_node) if found else None
            if s is None:
                continue
            if base is None or r is None or ran != base_params:
                why = (
                    "the calibration was measured with other parameters: run `vmlab grade calibrate`"
                    if ran != base_params
                    else f"no baseline or re-measured median of {shown}"
                )
                checks.append(ctx.check(cid, True, why, timing=True, task=task, skipped=True))
                continue
            v = compare_ratio(s, r, base, tol)
            msg = "" if v.ok else f"the report's ratio and the re-measured one differ by x{v.factor:.2f}"
            checks.append(
                ctx.check(
                    cid,
                    v.ok,
                    msg,
                    timing=True,
                    task=task,
                    measured=v.measured(),
                    expected=v.expected(tol),
                    description=desc,
                )
            )
    return checks
