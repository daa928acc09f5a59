"""What makes a hand-in worth a tutor's look. Nothing here changes a score; it only explains.

Per hand-in: unreadable, unknown or newer schema, another lab (blocking: it cannot be graded); an old
schema, another version of the lab's rules, figures that fail integrity, artifacts missing or not
matching, values outside the lab's physical bounds, a missing or bad signature.
Across the class (`cross_flags`, run again after a merge): one run id, one submission or one raw sample
vector under two students, or two hand-ins for one student.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from vmlab.check.paths import PathMissing, parse_path, resolve_raw
from vmlab.grade.model import Flag, StudentResult
from vmlab.labs.model import Lab
from vmlab.report.model import Experiment, Measurement, Report

CROSS = frozenset({"duplicate-run-id", "same-submission", "same-samples", "duplicate-student"})


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


def cross_flags(students: list[StudentResult]) -> list[StudentResult]:
    """The class-wide flags, recomputed from scratch (old ones dropped), and each status again.

    Messages name the other hand-in by its student id: class.json is for tutors only; the Gradescope
    output a student sees says only that the hand-in is under review.
    """
    fresh = [s.model_copy(update={"flags": [f for f in s.flags if f.code not in CROSS]}) for s in students]

    def group(keys_of: dict[int, list[str]], code: str, what: str, name: str = "student") -> None:
        holders: dict[str, set[int]] = defaultdict(set)
        for i, keys in keys_of.items():
            for k in keys:
                holders[k].add(i)
        partners: dict[int, set[int]] = defaultdict(set)
        for idx in holders.values():
            for i in idx:
                partners[i] |= idx - {i}
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
        {i: [s.student] for i, s in enumerate(fresh)},
        "duplicate-student",
        "another hand-in of this student:",
        "source",
    )
    return [with_status(s) for s in fresh]


def with_status(s: StudentResult) -> StudentResult:
    """invalid when a flag blocks grading, flagged when any flag is there, graded otherwise."""
    status = "invalid" if any(f.blocking for f in s.flags) else ("flagged" if s.flags else "graded")
    return s.model_copy(update={"status": status})
