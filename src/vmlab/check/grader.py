"""Evaluate a lab's checks against a report.

Paths are dotted paths into `report.experiments`; a path that ends on an experiment or a measurement
(anything with a summary) stands for its summary median, so `ratio` can compare two experiments directly.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from pydantic import BaseModel

from vmlab.labs.model import (
    Check,
    ExactCheck,
    Lab,
    OrderCheck,
    PresentCheck,
    RangeCheck,
    RatioCheck,
    RegexCheck,
)
from vmlab.report.model import CheckResult, Report


class PathMissing(LookupError):
    pass


def resolve(report: Report, path: str) -> Any:
    """Follow a dotted path through experiments; a final node with a summary yields its median."""
    node: Any = report.experiments
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if isinstance(node, BaseModel):
            node = node.model_dump()
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PathMissing(f"{'.'.join(walked)} is not in the report")
    if isinstance(node, BaseModel):
        node = node.model_dump()
    if isinstance(node, dict) and isinstance(node.get("summary"), dict):
        return node["summary"]["median"]
    if node is None:
        raise PathMissing(f"{path} is empty in the report")
    return node


def _number(report: Report, path: str) -> float:
    value = resolve(report, path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PathMissing(f"{path} is {type(value).__name__}, not a number")
    return float(value)


def _band(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"in [{lo:g}, {hi:g}]"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


def _in_band(x: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or x >= lo) and (hi is None or x <= hi)


def _fmt(x: Any) -> Any:
    return round(x, 6) if isinstance(x, float) else x


def evaluate(check: Check, report: Report) -> CheckResult:
    try:
        passed, measured, expected = _evaluate(check, report)
        message = "" if passed else f"measured {measured!r}, expected {expected}"
    except PathMissing as e:
        passed, measured, expected, message = False, None, _expected_of(check), str(e)
    return CheckResult(
        id=check.id,
        kind=check.kind,
        task=check.task,
        description=check.description,
        required=check.required,
        timing=check.timing,
        passed=passed,
        measured=_fmt(measured),
        expected=expected,
        message=message,
    )


def _expected_of(check: Check) -> str:
    match check:
        case ExactCheck():
            return f"== {check.value!r}"
        case RangeCheck() | RatioCheck():
            return _band(check.lo, check.hi)
        case RegexCheck():
            return f"matches /{check.pattern}/"
        case PresentCheck():
            return "present"
        case OrderCheck():
            return "increasing" if check.strict else "non-decreasing"
    raise AssertionError(check)


def _evaluate(check: Check, report: Report) -> tuple[bool, Any, str]:
    expected = _expected_of(check)
    match check:
        case ExactCheck():
            value = resolve(report, check.path)
            return _same(value, check.value), value, expected
        case RangeCheck():
            x = _number(report, check.path)
            return _in_band(x, check.lo, check.hi), x, expected
        case RatioCheck():
            num, den = _number(report, check.num), _number(report, check.den)
            if den == 0:
                return False, f"{num:g}/0", expected
            ratio = num / den
            return _in_band(ratio, check.lo, check.hi), ratio, expected
        case RegexCheck():
            text = resolve(report, check.path)
            return re.search(check.pattern, str(text)) is not None, _clip(str(text)), expected
        case PresentCheck():
            resolve(report, check.path)
            return True, "present", expected
        case OrderCheck():
            xs = [_number(report, p) for p in check.paths]
            pairs = list(itertools.pairwise(xs))
            ok = all(a < b for a, b in pairs) if check.strict else all(a <= b for a, b in pairs)
            return ok, xs, expected
    raise AssertionError(check)


def _same(value: Any, wanted: int | float | str | bool) -> bool:
    """Equality that keeps True apart from 1, so a flag never passes a count check."""
    if isinstance(wanted, bool) or isinstance(value, bool):
        return value is wanted
    return bool(value == wanted)


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def grade(report: Report, lab: Lab) -> list[CheckResult]:
    return [evaluate(c, report) for c in lab.checks]


def all_required_pass(results: list[CheckResult]) -> bool:
    return all(r.passed for r in results if r.required)
