"""What makes a hand-in worth a tutor's look. Nothing here computes a score; whether a flag holds the
published one is the policy's job (vmlab.grade.publish).

Per hand-in: unreadable, unknown or newer schema, another lab (blocking: it cannot be graded); an old
schema, another version of the lab's rules or none recorded, figures that fail integrity, artifacts
missing or not matching, a `checks`/`grade` block that the grader does not reproduce, values outside the
lab's physical bounds, a missing or bad signature, a report naming another student.
Across the class (`cross_flags`, run again after a merge): one run id, one submission or one raw sample
vector under two students, near-copies of code or samples, or two hand-ins for one student.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from vmlab.grade.model import Flag, StudentResult
from vmlab.report.model import Experiment, Measurement, Report
from vmlab.spec.lab import Lab
from vmlab.spec.paths import PathMissing, parse_path, resolve_raw

if TYPE_CHECKING:
    from vmlab.grade.nearcopy import NearCopy

CROSS = frozenset(
    {
        "duplicate-run-id",
        "same-submission",
        "same-samples",
        "same-timestamps",
        "same-spacing",
        "duplicate-student",
        "near-copy",
    }
)


def verdict_flags(report: Report, lab: Lab) -> list[Flag]:
    """The report's own `checks` and `grade` must be what grading it again under the same options gives.

    They never feed the score (it is always recomputed), so a mismatch is evidence of an edit, not a
    way to a better grade. Only reports run under the lab's current rules are compared: other rules may
    rightly give other verdicts.
    """
    from vmlab.check.grader import grade_report
    from vmlab.check.integrity import INTEGRITY_ID

    if report.checks is None and report.grade is None:
        return []
    tasks = [t for t in report.run.tasks if t in {x.id for x in lab.tasks}] or None
    timing = report.grade.timing if report.grade is not None else "graded"
    again, grade = grade_report(report, lab, tasks=tasks, timing=timing, legacy=False)
    # a choice question's verdict rests on the tutors' answer key, which a student's kit does not hold:
    # the student's own `vmlab check` rightly said `error` where the tutor's says pass or fail
    keyed = {f"q:{q.id}" for q in lab.questions if q.kind == "choice"}
    now = {r.id: r for r in again if r.id != INTEGRITY_ID and r.id not in keyed}
    said = {r.id: r for r in report.checks or [] if r.id != INTEGRITY_ID and r.id not in keyed}
    diffs = [
        f"{k}: {said[k].outcome} in the report, {now[k].outcome if k in now else 'no such check'} now"
        for k in sorted(said)
        if k not in now or (said[k].outcome, said[k].score) != (now[k].outcome, now[k].score)
    ]
    # the score includes the keyed questions' points: it is compared only where there are none
    if (
        not keyed
        and report.grade is not None
        and not math.isclose(report.grade.score, grade.score, abs_tol=1e-9)
    ):
        diffs.append(f"score {report.grade.score:g} in the report, {grade.score:g} now")
    if not diffs:
        return []
    more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
    return [Flag(code="verdict-edited", message="; ".join(diffs[:3]) + more)]


def bound_flags(report: Report, lab: Lab) -> list[Flag]:
    """Every sample and summary figure a `[[bounds]]` entry names must lie within it."""
    flags: list[Flag] = []
    for b in lab.bounds:
        members: list[str | None] = [*b.each] if b.each else [None]
        for member in members:
            path = parse_path(b.path)
            path = path.bind(member) if member is not None else path
            try:
                node = resolve_raw(report, path)
            except PathMissing:
                continue  # not measured: the checks say so, a bound has nothing to test
            bad = [
                x
                for x in _numbers(node)
                if (b.lo is not None and x < b.lo) or (b.hi is not None and x > b.hi)
            ]
            if bad:
                band = f"[{'' if b.lo is None else f'{b.lo:g}'}, {'' if b.hi is None else f'{b.hi:g}'}]"
                flags.append(
                    Flag(
                        code="out-of-bounds",
                        message=f"{path}: {len(bad)} value(s) outside {band}, e.g. {bad[0]:g}"
                        + (f" ({b.description})" if b.description else ""),
                    )
                )
    return flags


def _numbers(node: object) -> Iterator[float]:
    if isinstance(node, Experiment | Measurement):
        yield from node.samples
        if node.summary is not None:
            yield from (node.summary.median, node.summary.min, node.summary.max)
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield float(node)
    elif isinstance(node, list):
        yield from (float(x) for x in node if isinstance(x, int | float) and not isinstance(x, bool))


def cross_flags(students: list[StudentResult], near: Sequence[NearCopy] = ()) -> list[StudentResult]:
    """The class-wide flags, recomputed from scratch (old ones dropped).

    `near`: near-copy pairs by hand-in key (vmlab.grade.nearcopy); a pair already flagged as an exact
    copy (the same submission, or a shared sample vector) is not flagged twice. Messages name the other
    hand-in: class.json is for tutors only; the Gradescope output a student sees says only that the
    hand-in is under review.
    """
    fresh = [s.model_copy(update={"flags": [f for f in s.flags if f.code not in CROSS]}) for s in students]

    def group(
        keys_of: dict[int, list[str]],
        code: str,
        what: str,
        name: str = "student",
        unless: Callable[[int, int], bool] | None = None,
    ) -> None:
        """Flag every hand-in that shares a key with another, naming the others; `unless(i, j)`
        leaves out a pair that is flagged for it already."""
        holders: dict[str, set[int]] = defaultdict(set)
        for i, keys in keys_of.items():
            for k in keys:
                holders[k].add(i)
        partners: dict[int, set[int]] = defaultdict(set)
        for idx in holders.values():
            for i in idx:
                partners[i] |= {j for j in idx - {i} if unless is None or not unless(i, j)}
        for i, others in sorted(partners.items()):
            if others:
                shown = ", ".join(sorted(getattr(fresh[j], name) for j in others))
                fresh[i].flags.append(Flag(code=code, message=f"{what} {shown}"))

    fp = [s.fingerprint for s in fresh]
    group({i: [f.run_id] for i, f in enumerate(fp) if f.run_id}, "duplicate-run-id", "same run id as")
    group(
        {i: [f.submission] for i, f in enumerate(fp) if f.submission},
        "same-submission",
        "same submitted files (sha256) as",
    )
    group({i: f.samples for i, f in enumerate(fp)}, "same-samples", "same raw samples as")
    group(
        {i: f.timestamps for i, f in enumerate(fp)},
        "same-timestamps",
        "a run or step started at the same microsecond as in",
    )
    # a copy with its times shifted: the same gaps, none of the same times (those are flagged above)
    group(
        {i: [f.spacing] for i, f in enumerate(fp) if f.spacing},
        "same-spacing",
        "run and steps spaced to the microsecond as in",
        unless=lambda i, j: bool(set(fp[i].timestamps) & set(fp[j].timestamps)),
    )
    group(
        {i: [s.student] for i, s in enumerate(fresh)},
        "duplicate-student",
        "another hand-in of this student:",
        "source",
    )
    at = {s.handin or s.student: i for i, s in enumerate(fresh)}
    for n in near:
        if n.a not in at or n.b not in at:
            continue
        fa, fb = fresh[at[n.a]].fingerprint, fresh[at[n.b]].fingerprint
        if n.kind == "code" and fa.submission is not None and fa.submission == fb.submission:
            continue
        if n.kind == "samples" and set(fa.samples) & set(fb.samples):
            continue
        for me, other in ((n.a, n.b), (n.b, n.a)):
            message = f"{n.kind} nearly the same as {other}'s (similarity {n.score:.2f}): {n.evidence}"
            fresh[at[me]].flags.append(Flag(code="near-copy", message=message))
    return fresh
