"""The `variant` check: the run used the per-student parameters of the student it names.

Derived again here from lab, term and student (vmlab.spec.variants), never taken from the report: a
report copied from a classmate and renamed carries the classmate's parameters; one whose variant block
was edited to match ran its steps with other parameters than it claims. Either fails this check, which
(like integrity) leaves the report without a score: none of its figures was measured on the student's
own parameters. `vmlab grade` runs the same derivation for the hand-in's identity (`variant-mismatch`).
"""

from __future__ import annotations

from vmlab.report.model import CheckResult, Report
from vmlab.spec.lab import Lab
from vmlab.spec.variants import derive, differences, step_settings, term_of

VARIANT_ID = "variant"


def variant_problems(report: Report, lab: Lab, student: str | None, term: str | None = None) -> list[str]:
    """Why the report's parameters are not `student`'s variant in `term` (empty: they are)."""
    if lab.variants is None:
        return []
    want_term = term_of(lab, term)
    rec = report.run.variant
    if rec is None:
        return ["the report records no variant (it was made without per-student parameters)"]
    problems: list[str] = []
    if rec.term != want_term:
        problems.append(f"it was drawn for term {rec.term!r}, the lab's term is {want_term!r}")
    expected = derive(lab, student, want_term)
    whose = f"student {student!r}" if student else "no student (the anonymous variant)"
    problems += [f"{d} for {whose}" for d in differences(lab, rec.values, expected)]
    for step_id, keys in step_settings(lab, expected).items():
        record = report.steps.get(step_id)
        if record is None or record.status == "not_run":
            continue
        for key, value in keys.items():
            ran = record.params.get(key)
            if ran != value:
                problems.append(f"step {step_id} ran with {key}={ran!r}, the variant's is {value!r}")
    return problems


def variant_result(report: Report, lab: Lab, term: str | None = None) -> CheckResult | None:
    """One required check worth no points, for a lab with `[variants]`; None for a lab without."""
    if lab.variants is None:
        return None
    student = report.run.student
    problems = variant_problems(report, lab, student, term)
    if problems:
        more = f" (and {len(problems) - 2} more)" if len(problems) > 2 else ""
        message = "; ".join(problems[:2]) + more
    elif not student:
        message = "note: no student id: the anonymous variant, which `vmlab grade` holds as nobody's"
    else:
        message = ""
    return CheckResult(
        id=VARIANT_ID,
        kind="variant",
        description="the steps ran with the parameters drawn for this student (lab, term, student id)",
        required=True,
        outcome="fail" if problems else "pass",
        points=0.0,
        measured=dict(report.run.variant.values) if report.run.variant else None,
        expected="the student's own variant",
        message=message,
    )
