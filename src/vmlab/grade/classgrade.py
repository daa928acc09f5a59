"""Grade every hand-in of a class against one lab, a shard of them, or merge shards.

One hand-in's verdict: the lab's checks for the tasks graded (`--task`, default every task: the points
possible come from the lab, never from the report) and the integrity check (artifacts required: a
hand-in is the report with its `artifacts/`), then flags; the class-wide flags and the policy decide
the published score (vmlab.grade.publish). A hand-in that cannot be graded at all (unreadable, an
unknown or newer schema, another lab) is `invalid`, with no score rather than a zero. With `--rerun`,
the student's recorded code runs again on hidden inputs. A failed re-run check of kind `rerun-claim`
(the report claims what the check re-tests, e.g. a candidate that passed every public oracle, or the
hand-in withholds the code a step that ran read) zeroes the score, as failed integrity does. Other
failed re-run checks only fail, like any check: an honest, wrong engine is not a forgery. A re-run that
could not be done at all is the runner's fault: flagged `rerun-error`, so the grade is held for review.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vmlab import __version__
from vmlab.errors import UsageError, VmlabError
from vmlab.grade import flags as fl
from vmlab.grade.handins import HandIn, discover, fingerprint, load, measures
from vmlab.grade.model import CLAIM, ClassOptions, ClassResult, Decision, Flag, StudentResult
from vmlab.grade.publish import publish
from vmlab.grade.roster import Roster
from vmlab.grade.rubric import Rubric, apply_rubric, check_rubric, written_answers
from vmlab.report.model import CheckResult, Report
from vmlab.spec.lab import Lab

if TYPE_CHECKING:
    from vmlab.grade.nearcopy import NearCopy

Progress = Callable[[str], None]


@dataclass
class GradeRequest:
    hand_ins: list[Path]
    lab: str | None = None
    options: ClassOptions = field(default_factory=ClassOptions)
    shard: tuple[int, int] | None = None
    signature_key: bytes | None = None
    rerun_secret: bytes | None = None
    roster: Roster | None = None
    decisions: dict[str, Decision] = field(default_factory=dict)
    rubric: Rubric | None = None


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4): the second of four slices (1-based, as CI matrices count)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected i/N such as 1/4") from None
    if not 1 <= i <= n:
        raise UsageError(f"--shard {text!r}: i must be between 1 and N")
    return i, n


def take_shard(items: list[HandIn], shard: tuple[int, int] | None) -> list[HandIn]:
    """Round-robin over the hand-ins sorted by id and path, so every runner computes the same slices."""
    if shard is None:
        return items
    i, n = shard
    return [h for k, h in enumerate(items) if k % n == i - 1]


def _pick_lab(hand_ins: list[HandIn], lab: str | None) -> str:
    if lab is not None:
        return lab
    names = sorted({str(h.raw.get("lab")) for h in hand_ins if h.raw is not None and h.raw.get("lab")})
    if len(names) == 1:
        return names[0]
    raise UsageError(
        f"the hand-ins are for {len(names)} labs ({', '.join(names) or 'none readable'})",
        hint="name the lab to grade with --lab NAME; reports for other labs are then flagged",
    )


def grade_class(req: GradeRequest, progress: Progress | None = None) -> ClassResult:
    from vmlab.labs.catalog import lab_path, lab_sha256, load_lab

    say = progress or (lambda _m: None)
    t0 = time.monotonic()
    found = [load(h) for h in discover(req.hand_ins, req.roster)]
    lab_name = _pick_lab(found, req.lab)
    lab = load_lab(lab_name)
    known = [t.id for t in lab.tasks]
    for t in req.options.tasks:
        if t not in known:
            raise UsageError(f"lab {lab_name!r} has no task {t!r}", hint=f"pick one of: {', '.join(known)}")
    if req.rubric is not None:
        check_rubric(req.rubric, lab)
    chosen = take_shard(found, req.shard)
    if req.options.rerun and lab.rerun is None:
        raise UsageError(
            f"lab {lab_name!r} declares no [rerun] section",
            hint="grade without --rerun, or add one to lab.toml",
        )
    lab_dir = lab_path(lab_name).parent
    handed_out = skeleton_hashes(lab, lab_dir)
    students = []
    for k, h in enumerate(chosen, 1):
        say(f"[{k}/{len(chosen)}] {h.key}: {h.shown}")
        students.append(grade_one(h, lab, req, progress=say, handed_out=handed_out))
    # a shard sees a slice of the class: rows naming another shard's hand-ins are the merge's to list
    students, unused_rubric = apply_rubric(students, req.rubric, req.options.timing, whole=not req.shard)
    near = _near_copies(chosen, lab, lab_dir, req.options, say)
    students = fl.cross_flags(sorted(students, key=lambda s: (s.student, s.handin)), near)
    published, unused = publish(students, req.options, req.decisions)
    handed_in = {s.student for s in students}
    return ClassResult(
        lab=lab_name,
        lab_sha256=lab_sha256(lab_name),
        vmlab_version=__version__,
        graded_at=dt.datetime.now(dt.UTC),
        shard=f"{req.shard[0]}/{req.shard[1]}" if req.shard else None,
        options=req.options,
        seconds=round(time.monotonic() - t0, 3),
        students=published,
        missing=[] if req.roster is None or req.shard else [i for i in req.roster.ids if i not in handed_in],
        unused_decisions=[] if req.shard else unused,
        unused_rubric=unused_rubric,
    )


def _near_copies(
    hand_ins: list[HandIn], lab: Lab, lab_dir: Path, options: ClassOptions, say: Progress
) -> list[NearCopy]:
    if options.near_copies == "none":
        return []
    from vmlab.grade.nearcopy import class_near_copies

    graded = [(h.key, h.report, h.directory) for h in hand_ins if h.report and h.report.lab == lab.lab.name]
    say(f"comparing {len(graded)} hand-ins for near-copies ({options.near_copies})")
    return class_near_copies(graded, lab, lab_dir, code=options.near_copies == "all")


def _near_copies_again(students: list[StudentResult], result: ClassResult) -> list[NearCopy]:
    """Near-copies across shards, from the hand-ins where class.json found them (a merge on the
    runner that graded, or with the hand-ins checked out at the same paths)."""
    from vmlab.labs.catalog import lab_path, load_lab

    found = []
    for s in students:
        if s.status != "invalid" and s.report_path and Path(s.report_path).is_file():
            h = HandIn(path=Path(s.report_path), name_id=s.handin, shown=s.source, key=s.handin)
            found.append(load(h))
    try:
        lab = load_lab(result.lab)
    except VmlabError:
        return []
    return _near_copies(found, lab, lab_path(result.lab).parent, result.options, lambda _m: None)


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


def merge(
    parts: list[ClassResult],
    decisions: dict[str, Decision] | None = None,
    roster: Roster | None = None,
    rubric: Rubric | None = None,
) -> ClassResult:
    """Shards of one class (same lab, rules and options) into one result; class-wide flags, the
    policy, the tutor's decisions and rubric points applied again over the whole class."""
    if not parts:
        raise UsageError("nothing to merge", hint="pass the class.json of every shard")
    first = parts[0]
    for p in parts[1:]:
        if (p.lab, p.lab_sha256) != (first.lab, first.lab_sha256):
            raise UsageError(
                f"shard {p.shard or '?'} graded lab {p.lab!r} under other rules "
                f"than shard {first.shard or '?'}",
                hint="grade every shard with the same vmlab checkout and --lab",
            )
        if p.options != first.options:
            raise UsageError("the shards were graded with different options (--rerun, --timing, signatures)")
    shards = sorted({p.shard for p in parts if p.shard})
    if shards:
        total = {int(s.split("/")[1]) for s in shards}
        have = {int(s.split("/")[0]) for s in shards}
        if len(total) != 1 or have != set(range(1, next(iter(total)) + 1)):
            raise UsageError(
                f"shards {', '.join(shards)} are not one complete set i/N",
                hint="merge every shard's class.json",
            )
    students = sorted((s for p in parts for s in p.students), key=lambda s: (s.student, s.handin))
    if rubric is not None:
        from vmlab.labs.catalog import load_lab

        check_rubric(rubric, load_lab(first.lab))
    students, unused_rubric = apply_rubric(students, rubric, first.options.timing)
    near = _near_copies_again(students, first)
    students = fl.cross_flags(students, near)
    published, unused = publish(students, first.options, decisions)
    handed_in = {s.student for s in students}
    return ClassResult(
        lab=first.lab,
        lab_sha256=first.lab_sha256,
        vmlab_version=first.vmlab_version,
        graded_at=max(p.graded_at for p in parts),
        shard=None,
        options=first.options,
        seconds=round(sum(p.seconds or 0.0 for p in parts), 3),
        students=published,
        missing=[] if roster is None else [i for i in roster.ids if i not in handed_in],
        unused_decisions=unused,
        unused_rubric=unused_rubric,
    )
