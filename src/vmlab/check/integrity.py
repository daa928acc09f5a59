"""The integrity check: a report whose figures were edited by hand fails, whatever its other checks say.

Three things are re-derived from what the report itself holds:
- every summary (n, median, min, max, iqr) from its samples, for experiments and stage measurements;
- every figure the lab declares as derived (`[[derived]]` in lab.toml), from its expression;
- every artifact's sha256, when the file is next to the report (an absent file is a note, unless
  artifacts are required).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from vmlab.report.model import CheckResult, Experiment, Measurement, Report, Summary
from vmlab.report.stats import summarize
from vmlab.spec.checks import Derivation
from vmlab.spec.digest import sha256_file
from vmlab.spec.expr import Evaluation, ExprError, compile_expr, evaluate
from vmlab.spec.lab import Lab
from vmlab.spec.paths import PathMissing, parse_path, resolve_raw, summary_median

INTEGRITY_ID = "integrity"
REL_TOL = 1e-9  # summaries are computed from the same floats; only JSON round-off may differ
EXPECTED = "summaries match samples, derived figures re-derive, artifacts match their sha256"


def integrity_result(
    report: Report, lab: Lab, report_dir: Path | None, *, require_artifacts: bool = False
) -> CheckResult:
    """One required check, `integrity`, worth no points; failing it fails the report."""
    problems = list(summary_problems(report))
    n_summaries = sum(1 for _ in _measurements(report))
    derivations: Sequence[Derivation] = getattr(lab, "derived", [])
    derived_problems, derived_notes, n_derived = derivation_problems(report, derivations)
    problems += derived_problems
    art_problems, absent, n_verified = artifact_problems(report, report_dir)
    problems += art_problems
    notes = list(derived_notes)
    if absent and require_artifacts:
        problems += [f"artifact {a} is not next to the report" for a in absent]
    elif absent:
        notes.append(f"{len(absent)} artifact(s) not next to the report, not verified: {', '.join(absent)}")
    measured = {"summaries": n_summaries, "derived": n_derived, "artifacts verified": n_verified}
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        message = "; ".join(problems[:3]) + more
    else:
        message = "; ".join(f"note: {n}" for n in notes)
    return CheckResult(
        id=INTEGRITY_ID,
        kind="integrity",
        description="the report's figures agree with its samples, derivations and artifacts",
        required=True,
        outcome="fail" if problems else "pass",
        points=0.0,
        measured=measured,
        expected=EXPECTED,
        message=message,
    )


def _measurements(report: Report) -> Iterator[tuple[str, Experiment | Measurement]]:
    for where, exp in report.each_experiment():
        if exp.summary is not None:
            yield where, exp
        for stage, m in exp.stages.items():
            yield f"{where}.stages.{stage}", m


def summary_problems(report: Report) -> Iterator[str]:
    for where, m in _measurements(report):
        if not _matches(m.summary, m.samples):
            yield f"summary does not match samples at {where}"


def _matches(summary: Summary | None, samples: list[float]) -> bool:
    if summary is None:
        return True
    if not samples:
        return False
    again = summarize(samples)
    if summary.n != again.n:
        return False
    pairs = [(summary.median, again.median), (summary.min, again.min), (summary.max, again.max)]
    pairs.append((summary.iqr, again.iqr))
    return all(math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12) for a, b in pairs)


def derivation_problems(
    report: Report, derivations: Sequence[Derivation]
) -> tuple[list[str], list[str], int]:
    """(problems, notes, how many were checked); a figure that is absent is not checked."""
    problems: list[str] = []
    notes: list[str] = []
    checked = 0
    for d in derivations:
        members: list[str | None] = [*d.each] if d.each else [None]
        for member in members:
            path = parse_path(d.path)
            path = path.bind(member) if member is not None else path
            expr_text = d.expr if member is None else d.expr.replace("{member}", member)
            try:
                stored = summary_median(resolve_raw(report, path))
                derived = evaluate(compile_expr(d.expr), Evaluation(report, member=member))
            except PathMissing:
                continue
            except ExprError as e:
                notes.append(f"derivation of {path} not checked: {e}")
                continue
            checked += 1
            if not _same_number(stored, derived):
                problems.append(
                    f"derived figure does not match at {path}: {stored!r}, but {expr_text} gives {derived!r}"
                )
    return problems, notes, checked


def _same_number(stored: Any, derived: Any) -> bool:
    for x in (stored, derived):
        if isinstance(x, bool) or not isinstance(x, int | float):
            return False
    return math.isclose(float(stored), float(derived), rel_tol=REL_TOL, abs_tol=1e-12)


def _artifacts(report: Report) -> dict[str, str]:
    """Every listed file (relative path → sha256): run artifacts, step artifacts, file inputs."""
    listed: dict[str, str] = {}
    for a in [*report.artifacts, *(a for s in report.steps.values() for a in s.artifacts)]:
        listed.setdefault(a.path, a.sha256)
    for rec in report.inputs.values():
        if rec.kind == "file":  # a folder input's digest covers a tree, not the copy's bytes
            listed.setdefault(rec.artifact, rec.sha256)
    return listed


def artifact_problems(report: Report, report_dir: Path | None) -> tuple[list[str], list[str], int]:
    """(problems, absent files, how many were verified).

    A listed path is read only when it resolves inside the report's folder: a symlink in a hand-in
    pointing at a file elsewhere (another student's, the tutor's) is a problem, never hashed.
    """
    problems: list[str] = []
    absent: list[str] = []
    verified = 0
    folder = report_dir.resolve() if report_dir is not None else None
    for rel, sha in _artifacts(report).items():
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts:
            problems.append(f"artifact {rel} is not inside the report's folder")
            continue
        path = report_dir / pure if report_dir is not None else None
        if path is not None and folder is not None and not path.resolve().is_relative_to(folder):
            problems.append(f"artifact {rel} is a symlink out of the report's folder: not read")
            continue
        if path is None or not path.is_file():
            absent.append(rel)
            continue
        verified += 1
        if sha256_file(path) != sha:
            problems.append(f"artifact {rel} does not match its sha256")
    return problems, absent, verified
