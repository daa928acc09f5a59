"""One hand-in's verdict: the lab's checks for the tasks graded, the integrity check, the re-run when
asked, and the hand-in's own flags (identity, variant, unproven schema-1 claims). Its status and
published score come later, from the class (vmlab.grade.classgrade, vmlab.grade.publish)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vmlab.grade import flags as fl
from vmlab.grade.handins import HandIn, fingerprint, measures
from vmlab.grade.model import CLAIM, Flag, StudentResult
from vmlab.grade.roster import Roster
from vmlab.grade.rubric import written_answers
from vmlab.report.model import CheckResult, Report
from vmlab.spec.lab import Lab

if TYPE_CHECKING:
    from vmlab.grade.request import GradeRequest, Progress


def _flag(code: str, message: str, blocking: bool = False) -> Flag:
    return Flag(code=code, message=message, blocking=blocking)


def skeleton_hashes(lab: Lab, lab_dir: Path) -> frozenset[str]:
    """sha256 of every file input's default (the skeleton every student got)."""
    from vmlab.spec.digest import sha256_file

    paths = [lab_dir / i.default for i in lab.inputs.values() if i.kind == "file" and i.default]
    return frozenset(sha256_file(p) for p in paths if p.is_file())


def grade_one(
    h: HandIn,
    lab: Lab,
    req: GradeRequest,
    progress: Progress | None = None,
    handed_out: frozenset[str] = frozenset(),
) -> StudentResult:
    """One hand-in's checks, computed score and flags; its status and published score come later, from
    the class-wide flags and the policy (vmlab.grade.publish)."""
    from vmlab.check.grader import GRADER_FAULTS, grade_report, make_grade
    from vmlab.check.integrity import INTEGRITY_ID
    from vmlab.labs.catalog import lab_sha256

    base = StudentResult(
        student=h.student,
        handin=h.key,
        claimed_student=h.claimed_student,
        source=h.shown,
        lab=str(h.raw.get("lab")) if h.raw and h.raw.get("lab") else None,
        run_id=str(h.raw.get("run_id")) if h.raw and h.raw.get("run_id") else None,
        schema_version=h.schema_version,
        status="invalid",
        report_path=str(h.path),
        report_sha256=h.sha256,
    )
    if h.report is None:
        return base.model_copy(update={"flags": [_flag("unreadable", h.problem or "", blocking=True)]})
    report = h.report
    if report.lab != lab.lab.name:
        flag = _flag("wrong-lab", f"a report for lab {report.lab!r}, not {lab.lab.name!r}", blocking=True)
        return base.model_copy(update={"flags": [flag]})

    flags = _identity_flags(h, req.roster)
    legacy = h.schema_version is not None and h.schema_version < 2
    if legacy:
        flags.append(
            _flag(
                "old-schema",
                f"schema {h.schema_version}, from an older vmlab: it records no steps, inputs or "
                "artifacts, so no check it passes is proven",
            )
        )
    elif not report.run.lab_sha256:
        flags.append(
            _flag("lab-hash-missing", "the report records no lab.toml sha256: its rules are unknown")
        )
    elif report.run.lab_sha256 != lab_sha256(lab.lab.name):
        flags.append(_flag("lab-rules-differ", "run under another version of the lab's lab.toml"))
    else:
        flags += fl.verdict_flags(report, lab)
    signature = "not_checked"
    if req.signature_key is not None and h.raw is not None:
        from vmlab.grade.sign import verify

        ok, why = verify(h.raw, req.signature_key)
        signature = "valid" if ok else ("absent" if "signature" not in h.raw else "invalid")
        if not ok:
            flags.append(_flag("signature", why))

    results, grade = grade_report(
        report,
        lab,
        report_dir=h.directory,
        tasks=req.options.tasks or None,
        timing=req.options.timing,
        require_artifacts=not legacy,
        legacy=legacy,
        term=req.options.term,
    )
    flags += _variant_flags(h, report, lab, req)
    if legacy:
        results = [_unproven(r) for r in results]
    integrity = next(r for r in results if r.id == INTEGRITY_ID)
    if integrity.outcome == "fail":
        code = "artifacts" if "artifact" in integrity.message else "integrity"
        flags.append(_flag(code, integrity.message))
    faults = [r for r in results if r.outcome == "error" and r.message.startswith(GRADER_FAULTS)]
    if faults:
        what = "; ".join(f"{r.id}: {r.message}" for r in faults[:3])
        flags.append(_flag("grader-error", f"the grader could not grade {len(faults)} check(s): {what}"))
    flags += fl.bound_flags(report, lab)

    if req.options.rerun and req.rerun_secret is not None:
        extra, rerun_flags, zero = _rerun(h, report, lab, req, progress)
        results = results + extra
        flags += rerun_flags
        grade = make_grade(results, req.options.timing)
        if zero:
            grade = grade.model_copy(update={"score": 0.0})
    return base.model_copy(
        update={
            "status": "graded",
            "computed_score": grade.score,
            "max_score": grade.max_score,
            "exit_code": grade.exit_code,
            "accel": report.host.accel,
            "signature": signature,
            "flags": flags,
            "checks": results,
            "fingerprint": fingerprint(report, handed_out),
            "measures": measures(report),
            "written": written_answers(report, results),
        }
    )


def _aliases(h: HandIn, roster: Roster | None) -> set[str]:
    """The names (lower case) a report may give for the student who handed it in."""
    return roster.aliases(h.student) if roster is not None else {h.student.lower(), h.name_id.lower()}


def _identity_flags(h: HandIn, roster: Roster | None) -> list[Flag]:
    flags = []
    if roster is not None and roster.id_of(h.name_id) is None:
        flags.append(_flag("not-in-roster", f"hand-in {h.name_id!r} names no student of the roster"))
    claimed = h.claimed_student
    if claimed and claimed.lower() not in _aliases(h, roster):
        flags.append(
            _flag("identity", f"the report names student {claimed!r}; it was handed in as {h.student!r}")
        )
    return flags


def _variant_flags(h: HandIn, report: Report, lab: Lab, req: GradeRequest) -> list[Flag]:
    """`variant-mismatch`: the parameters are not those drawn for the student who handed it in (the
    report's own claim counts only when it is one of that student's names, as identity checks)."""
    from vmlab.check.variant import variant_problems

    if lab.variants is None:
        return []
    claimed = h.claimed_student
    student = claimed if claimed and claimed.lower() in _aliases(h, req.roster) else h.student
    problems = variant_problems(report, lab, student, req.options.term)
    if not problems:
        return []
    return [_flag("variant-mismatch", f"not {h.student}'s variant: {'; '.join(problems[:2])}")]


UNPROVEN = "unproven: a schema-1 report records no steps, inputs or artifacts to verify this against"


def _unproven(r: CheckResult) -> CheckResult:
    if r.outcome != "pass":
        return r
    return r.model_copy(update={"message": f"{UNPROVEN}{'; ' + r.message if r.message else ''}"})


def _rerun(
    h: HandIn, report: Report, lab: Lab, req: GradeRequest, progress: Progress | None
) -> tuple[list[CheckResult], list[Flag], bool]:
    """The re-run's checks, its flags, and whether the score goes to 0 (the report claims what the
    submitted code does not do, or withholds the code the re-run needs)."""
    from vmlab.grade.rerun import rerun_checks

    assert req.rerun_secret is not None
    flags: list[Flag] = []
    withheld = _withheld_inputs(report, lab, h.directory, req.options.tasks)
    if withheld:
        names = ", ".join(withheld)
        flags.append(
            _flag(
                "rerun-input-missing",
                f"steps that ran read input {names}, but the hand-in records no such file under "
                "artifacts/ to re-run",
            )
        )
    extra = [
        CheckResult(
            id=f"rerun:inputs[{name}]",
            kind=CLAIM,
            task=lab.rerun.task if lab.rerun else None,
            outcome="fail",
            points=0.0,
            message=f"input {name} was used by the run but is not in the hand-in: the re-run cannot "
            "verify it",
            expected="the submitted code, as the report recorded it",
        )
        for name in withheld
    ]
    extra += rerun_checks(h, report, lab, req.rerun_secret, progress=progress)
    failed = [r for r in extra if r.required and r.outcome == "fail" and r.kind == CLAIM]
    uses = [r for r in failed if r.id.startswith("rerun:uses-reference")]
    if uses:
        flags.append(_flag("uses-reference", "; ".join(r.message for r in uses[:3])))
    if failed and not withheld:
        what = "; ".join(f"{r.id}: {r.message}" for r in failed[:3])
        flags.append(
            _flag("rerun-mismatch", f"the report claims what the submitted code does not do: {what}")
        )
    errors = [r for r in extra if r.outcome == "error"]
    if errors:
        flags.append(_flag("rerun-error", "; ".join(f"{r.id}: {r.message}" for r in errors[:3])))
    return extra, flags, bool(failed)


def _withheld_inputs(report: Report, lab: Lab, report_dir: Path, tasks: list[str]) -> list[str]:
    """Re-run inputs read by a step of the graded tasks that ran fine, for which the hand-in has no
    matching file: deleting `inputs` (or the file) never skips a re-run. A step without an `ok`
    record earns no points (fail closed), so there is no claim of its to re-run."""
    from vmlab.grade.rerun import recorded_inputs

    if lab.rerun is None:
        return []
    steps = [s for t in lab.tasks if not tasks or t.id in tasks for s in t.experiments]
    needed: list[str] = []
    for sid in dict.fromkeys(steps):
        rec = report.steps.get(sid)
        if rec is None or rec.status != "ok":
            continue
        needed += [n for n in lab.experiments[sid].inputs if n in lab.rerun.inputs]
    needed = list(dict.fromkeys(needed))
    have = recorded_inputs(report, report_dir, needed)
    return [n for n in needed if n not in have]
