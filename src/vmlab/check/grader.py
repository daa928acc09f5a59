"""Evaluate a lab's checks against a report: one outcome per check, then the grade.

Outcomes: `pass`/`fail` when the data was there to judge; `skipped` when the step behind the check did
not run (or `when` is false: then `applicable` is false too); `error` when the check could not be
graded (the step failed, or the grader itself did: a bad expression, a division by zero). Only a step
that ran fine and still lacks a path makes a `fail`. A report without step records (upgraded from
schema 1) has no such evidence: a missing path fails, as it always did.

Exit code (Grade.exit_code): 1 when a required check failed (integrity included), else 3 when a
required, applicable check is skipped or error, else 0. `timing="advisory"` keeps checks marked
`timing` out of the exit code and the score (they are still graded and shown).
Score, failing closed: the points possible are those of every applicable check the lab declares for
the tasks graded, optional ones included, whatever the report says about its steps. A check that is
skipped or in error scores 0 of its points and says why, so deleting an experiment or marking its step
`skipped` never shrinks the denominator. Only a check whose `when` condition is false leaves it, and
`timing="advisory"` (the grader's choice, never the report's). A report that fails integrity scores 0,
since its figures cannot be trusted; so does one that fails `variant` (vmlab.check.variant: its steps
did not run with the student's own parameters). Faults of the grader itself (a bad expression:
GRADER_FAULTS) are `error` too; `vmlab grade` holds such a hand-in for review (vmlab.grade.classgrade).

The lab's `[[questions]]` are graded here too (vmlab.check.questions): `q:<id>` results of kind
`question` or `question-text`, optional unless the question says `required`, whose points count in the
points possible like any check's, so an unanswered question scores 0 of them.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmlab.check.gate import paths_gate, step_of
from vmlab.check.integrity import INTEGRITY_ID, integrity_result
from vmlab.check.questions import question_results
from vmlab.check.variant import VARIANT_ID, variant_result
from vmlab.errors import LabError
from vmlab.report.model import CheckResult, Grade, Outcome, Report, Timing
from vmlab.spec.checks import (
    Check,
    CompareCheck,
    ExactCheck,
    ExprCheck,
    OrderCheck,
    PresentCheck,
    RangeCheck,
    RatioCheck,
    RegexCheck,
)
from vmlab.spec.expr import Evaluation, ExprError, compile_expr, evaluate
from vmlab.spec.lab import Lab
from vmlab.spec.paths import ParsedPath, PathMissing, number, parse_path, resolve, resolve_raw

# message prefixes of an `error` outcome that is the grader's fault (a lab's expression), not the report's
GRADER_FAULTS = ("cannot grade:", "grader error:")

__all__ = ["GRADER_FAULTS", "PathMissing", "evaluate_check", "grade_report", "make_grade", "resolve"]


@dataclass(frozen=True)
class _Bound:
    """One check for one member (member None: a plain check)."""

    check: Check
    member: str | None

    @property
    def id(self) -> str:
        return self.check.id if self.member is None else f"{self.check.id}[{self.member}]"

    def path(self, text: str) -> ParsedPath:
        p = parse_path(text)
        return p if self.member is None else p.bind(self.member)

    def text(self, s: str) -> str:
        return s if self.member is None else s.replace("{member}", self.member)


def grade_report(
    report: Report,
    lab: Lab,
    *,
    report_dir: Path | None = None,
    tasks: list[str] | None = None,
    timing: Timing = "graded",
    require_artifacts: bool = False,
    legacy: bool | None = None,
    answer_key: dict[str, str] | None = None,
    term: str | None = None,
) -> tuple[list[CheckResult], Grade]:
    """Every check's outcome (group checks expanded), then the questions' (`q:<id>`, and the `answers`
    check when answers were handed in: vmlab.check.questions), the integrity check last, and the grade.

    `answer_key`: the choice questions' key; None reads the lab's solution/answers.toml.
    `term`: the term the `variant` check derives parameters for; None: VMLAB_TERM, else the lab's.

    `legacy`: the report comes from schema 1, which recorded no steps, so the data present is graded
    as it is. None infers it from what an upgrade leaves (no steps, no inputs, no lab hash); a tutor's
    grader passes what the hand-in's own schema_version says, so deleting `steps` from a schema-2
    report never makes it one.
    """
    if legacy is None:
        legacy = not report.steps and not report.inputs and not report.run.lab_sha256
    known = [t.id for t in lab.tasks]
    for t in tasks or []:
        if t not in known:
            raise LabError(f"lab {lab.lab.name!r} has no task {t!r}", hint=f"pick one of: {', '.join(known)}")
    results = [evaluate_check(b, report, lab, legacy=legacy) for b in _expand(lab, report)]
    asked, answers = question_results(
        report, lab, report_dir=report_dir, answer_key=answer_key, legacy=legacy
    )
    results += asked
    if tasks:
        results = [r for r in results if r.task in tasks]
    if answers is not None:
        results.append(answers)
    variant = variant_result(report, lab, term)
    if variant is not None:
        results.append(variant)
    results.append(integrity_result(report, lab, report_dir, require_artifacts=require_artifacts))
    return results, make_grade(results, timing)


def _expand(lab: Lab, report: Report) -> Iterator[_Bound]:
    for check in lab.checks:
        if check.each is None:
            yield _Bound(check, None)
        elif isinstance(check.each, list):
            for member in check.each:
                yield _Bound(check, member)
        else:
            try:
                group = resolve_raw(report, parse_path(check.each))
            except PathMissing:
                group = None
            if isinstance(group, dict) and group:
                for member in group:
                    yield _Bound(check, str(member))
            else:
                yield _Bound(check, None)  # graded as missing: the group is not in the report


def evaluate_check(
    bound: _Bound | Check, report: Report, lab: Lab | None = None, *, legacy: bool = False
) -> CheckResult:
    """One check's outcome. Never raises: a grader fault becomes an `error` outcome."""
    b = bound if isinstance(bound, _Bound) else _Bound(bound, None)
    c = b.check
    task = c.task if c.task is not None or lab is None else _member_task(b, report, lab)
    base: dict[str, Any] = dict(
        id=b.id,
        kind=c.kind,
        task=task,
        description=b.text(c.description),
        required=c.required,
        timing=c.timing,
        points=c.points,
    )
    expected = _expected_of(b)
    outcome: Outcome
    try:
        if c.when is not None:
            ev = Evaluation(report, member=b.member, missing_is_none=True)
            if not evaluate(compile_expr(c.when), ev):
                facts = ", ".join(f"{k} = {v!r}" for k, v in ev.seen.items())
                message = f"not applicable: {c.when} is false" + (f" ({facts})" if facts else "")
                return CheckResult(
                    **base, outcome="skipped", applicable=False, expected=expected, message=message
                )
        if c.each is not None and b.member is None:
            raise PathMissing(f"group {c.each} is not in the report or is empty")
        gate = None if legacy else _step_gate(b, task, report, lab)
        if gate is not None:
            outcome, message = gate
            return CheckResult(**base, outcome=outcome, expected=expected, message=message)
        passed, measured, expected = _evaluate(b, report)
        outcome = "pass" if passed else "fail"
        message = "" if passed else f"measured {_fmt(measured)!r}, expected {expected}"
    except PathMissing as e:
        outcome, measured, message = "fail", None, str(e)
    except ExprError as e:
        outcome, measured, message = "error", None, f"cannot grade: {e}"
    except Exception as e:  # a grader fault is never the student's loss
        outcome, measured, message = "error", None, f"grader error: {type(e).__name__}: {e}"
    return CheckResult(
        **base,
        outcome=outcome,
        score=c.points if outcome == "pass" else 0.0,
        measured=_fmt(measured),
        expected=expected,
        message=message,
    )


def _paths(b: _Bound) -> list[ParsedPath]:
    c = b.check
    if isinstance(c, ExprCheck):
        ps = list(compile_expr(c.expr).paths.values())
        return [p.bind(b.member) if b.member is not None else p for p in ps]
    return [b.path(t) for t in c.path_texts()]


def _member_task(b: _Bound, report: Report, lab: Lab) -> str | None:
    """A group member's task: the task running the step behind the first path that names the member."""
    if b.member is None:
        return None
    for text in b.check.path_texts():
        p = parse_path(text)
        if p.has_member and p.experiment is not None:
            exp = p.bind(b.member).segments[0]
            step = step_of(exp, report) or exp
            for t in lab.tasks:
                if step in t.experiments:
                    return t.id
    return None


def _step_gate(b: _Bound, task: str | None, report: Report, lab: Lab | None) -> tuple[Outcome, str] | None:
    return paths_gate(_paths(b), task, report, lab)


def _band(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"in [{lo:g}, {hi:g}]"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


def _in_band(x: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or x >= lo) and (hi is None or x <= hi)


def _fmt(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 6)
    if isinstance(x, list):
        return [_fmt(v) for v in x]
    if isinstance(x, dict):
        return {k: _fmt(v) for k, v in x.items()}
    return x


def _tol(c: CompareCheck) -> str:
    parts = [f"rel {c.rel_tol:g}" if c.rel_tol else "", f"abs {c.abs_tol:g}" if c.abs_tol else ""]
    shown = ", ".join(p for p in parts if p)
    return f" (tolerance {shown})" if shown else ""


def _expected_of(b: _Bound) -> str:
    c = b.check
    match c:
        case ExactCheck():
            return f"== {c.value!r}"
        case RangeCheck() | RatioCheck():
            return _band(c.lo, c.hi)
        case RegexCheck():
            return f"matches /{c.pattern}/"
        case PresentCheck():
            return "present"
        case OrderCheck():
            return "increasing" if c.strict else "non-decreasing"
        case CompareCheck():
            return f"{c.op} {b.path(c.right)}{_tol(c)}"
        case ExprCheck():
            return b.text(c.expr)
    raise AssertionError(c)


def _evaluate(b: _Bound, report: Report) -> tuple[bool, Any, str]:
    c = b.check
    expected = _expected_of(b)
    match c:
        case ExactCheck():
            value = resolve(report, b.path(c.path))
            return _same(value, c.value), value, expected
        case RangeCheck():
            x = number(report, b.path(c.path))
            return _in_band(x, c.lo, c.hi), x, expected
        case RatioCheck():
            num, den = number(report, b.path(c.num)), number(report, b.path(c.den))
            if den == 0:
                return False, f"{num:g}/0", expected
            ratio = num / den
            return _in_band(ratio, c.lo, c.hi), ratio, expected
        case RegexCheck():
            text = str(resolve(report, b.path(c.path)))
            return re.search(c.pattern, text) is not None, _clip(text), expected
        case PresentCheck():
            resolve(report, b.path(c.path))
            return True, "present", expected
        case OrderCheck():
            xs = [number(report, b.path(p)) for p in c.paths]
            pairs = list(itertools.pairwise(xs))
            ok = all(x < y for x, y in pairs) if c.strict else all(x <= y for x, y in pairs)
            return ok, xs, expected
        case CompareCheck():
            left, right = number(report, b.path(c.left)), number(report, b.path(c.right))
            ok = compare(left, c.op, right, rel_tol=c.rel_tol, abs_tol=c.abs_tol)
            return ok, left, f"{c.op} {_fmt(right)!r} ({b.path(c.right)}){_tol(c)}"
        case ExprCheck():
            ev = Evaluation(report, member=b.member)
            ok = evaluate(compile_expr(c.expr), ev)
            if not isinstance(ok, bool):
                raise ExprError(f"{c.expr!r} gives {ok!r}, not true or false")
            return ok, ev.seen, expected
    raise AssertionError(c)


def compare(left: float, op: str, right: float, *, rel_tol: float = 0.0, abs_tol: float = 0.0) -> bool:
    """`left op right` where "close" (math.isclose) counts as equal: lenient for <=, ==, >=; strict
    comparisons must hold beyond the tolerance."""
    close = math.isclose(left, right, rel_tol=rel_tol, abs_tol=abs_tol)
    return {
        "<": left < right and not close,
        "<=": left <= right or close,
        "==": close,
        "!=": not close,
        ">=": left >= right or close,
        ">": left > right and not close,
    }[op]


def _same(value: Any, wanted: int | float | str | bool) -> bool:
    """Equality that keeps True apart from 1, so a flag never passes a count check."""
    if isinstance(wanted, bool) or isinstance(value, bool):
        return value is wanted
    return bool(value == wanted)


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def make_grade(results: list[CheckResult], timing: Timing = "graded") -> Grade:
    """The verdict: see the module docstring for the exit code and the score."""
    advisory = [r for r in results if timing == "advisory" and r.timing]
    counted = [r for r in results if r.applicable and not (timing == "advisory" and r.timing)]
    required = [r for r in counted if r.required]
    if any(r.outcome == "fail" for r in required):
        exit_code = 1
    elif any(r.outcome in ("error", "skipped") for r in required):
        exit_code = 3
    else:
        exit_code = 0
    # figures that disagree with their samples, or were not measured on the student's own parameters,
    # are nobody's: no score
    trusted = all(r.passed for r in results if r.id in (INTEGRITY_ID, VARIANT_ID))
    counts = {o: sum(1 for r in results if r.outcome == o) for o in ("pass", "fail", "skipped", "error")}
    counts |= {
        "required": len(required),
        "required_passed": sum(1 for r in required if r.passed),
        "optional": len(counted) - len(required),
        "optional_passed": sum(1 for r in counted if r.passed and not r.required),
        "not_applicable": sum(1 for r in results if not r.applicable),
        "advisory": len(advisory),
    }
    return Grade(
        passed=exit_code == 0,
        exit_code=exit_code,
        score=sum(r.score for r in counted) if trusted else 0.0,
        max_score=sum(r.points for r in counted),
        counts=counts,
        timing=timing,
    )
