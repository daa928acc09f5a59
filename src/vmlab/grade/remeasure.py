"""Re-measuring a measurement lab on the tutor's runner (`vmlab grade --rerun` for a lab whose
`[rerun]` says `where = "host"`); the runner's own baseline (`vmlab grade calibrate`) is
vmlab.grade.calibration's.

These labs' steps run vmlab's own runners (trusted code) on the student's parameters, so their re-run is
not a container run of the student's code: the lab's steps run again here, through the lab pipeline
(`run_lab`), with the parameters the report records (checked against what the runner accepts), into a
temporary folder that is removed afterwards. Student files a step reads (Jasmin classes, a
workload, an observer tool) are the hand-in's recorded copies, whose sha256 the report
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

import json
import math
from typing import TYPE_CHECKING, Any

from vmlab.errors import VmlabError
from vmlab.grade.calibration import compare_ratio, read_calibration
from vmlab.grade.measuring import (
    REPEAT_KEYS,
    MeasureParams,
    at,
    expand,
    experiments_json,
    lab_run,
    measure_params,
    median_of,
    segments,
    step_ok,
)

if TYPE_CHECKING:
    from vmlab.grade.rerun import RerunContext
    from vmlab.report.model import CheckResult, Report
    from vmlab.spec.lab import Lab


# ---- the re-run ---------------------------------------------------------------------------------------


def _step_making(report: Report, steps: list[str], head: str) -> str | None:
    """The step whose record lists experiment `head` (a step may make experiments under other ids)."""
    return next((s for s in steps if head in report.steps[s].experiments), None)


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
    steps = [s for s in dict.fromkeys([*p.steps, *(extra or [])]) if s in graded and step_ok(report, s)]
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
        with lab_run(lab.lab.name, runnable, sets, inputs, ctx.progress) as again:
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
