"""Grade every hand-in of a class against one lab, a shard of them, or merge shards.

One hand-in's verdict: the lab's checks and the integrity check (artifacts required: a hand-in is the
report with its `artifacts/`), then flags. A hand-in that cannot be graded at all (unreadable, an
unknown or newer schema, another lab) is `invalid`, with no score rather than a zero. With `--rerun`,
the student's recorded code runs again on hidden inputs. A failed re-run check of kind `rerun-claim`
(the report claims what the check re-tests, e.g. a candidate that passed every public oracle) means the
submitted code does not do what the report says: the score is 0, as for failed integrity. Other failed
re-run checks only fail, like any check: an honest, wrong engine is not a forgery.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vmlab import __version__
from vmlab.errors import UsageError
from vmlab.grade import flags as fl
from vmlab.grade.handins import HandIn, discover, fingerprint, load, measures
from vmlab.grade.model import CLAIM, ClassOptions, ClassResult, Flag, StudentResult
from vmlab.labs.model import Lab
from vmlab.report.model import CheckResult

Progress = Callable[[str], None]


@dataclass
class GradeRequest:
    hand_ins: list[Path]
    lab: str | None = None
    options: ClassOptions = field(default_factory=ClassOptions)
    shard: tuple[int, int] | None = None
    signature_key: bytes | None = None
    rerun_secret: bytes | None = None


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
    from vmlab.labs.catalog import lab_sha256, load_lab

    say = progress or (lambda _m: None)
    t0 = time.monotonic()
    found = [load(h) for h in discover(req.hand_ins)]
    lab_name = _pick_lab(found, req.lab)
    lab = load_lab(lab_name)
    chosen = take_shard(found, req.shard)
    if req.options.rerun and lab.rerun is None:
        raise UsageError(
            f"lab {lab_name!r} declares no [rerun] section",
            hint="grade without --rerun, or add one to lab.toml",
        )
    students = []
    for k, h in enumerate(chosen, 1):
        say(f"[{k}/{len(chosen)}] {h.student}: {h.shown}")
        students.append(grade_one(h, lab, req, progress=say))
    return ClassResult(
        lab=lab_name,
        lab_sha256=lab_sha256(lab_name),
        vmlab_version=__version__,
        graded_at=dt.datetime.now(dt.UTC),
        shard=f"{req.shard[0]}/{req.shard[1]}" if req.shard else None,
        options=req.options,
        seconds=round(time.monotonic() - t0, 3),
        students=fl.cross_flags(sorted(students, key=lambda s: (s.student, s.source))),
    )


def grade_one(h: HandIn, lab: Lab, req: GradeRequest, progress: Progress | None = None) -> StudentResult:
    from vmlab.check.grader import grade_report, make_grade
    from vmlab.check.integrity import INTEGRITY_ID
    from vmlab.labs.catalog import lab_sha256

    base = StudentResult(
        student=h.student,
        source=h.shown,
        lab=str(h.raw.get("lab")) if h.raw and h.raw.get("lab") else None,
        run_id=str(h.raw.get("run_id")) if h.raw and h.raw.get("run_id") else None,
        schema_version=h.schema_version,
        status="invalid",
        report_path=str(h.path),
    )
    if h.report is None:
        return fl.with_status(
            base.model_copy(
                update={"flags": [Flag(code="unreadable", message=h.problem or "", blocking=True)]}
            )
        )
    report = h.report
    if report.lab != lab.lab.name:
        flag = Flag(
            code="wrong-lab", message=f"a report for lab {report.lab!r}, not {lab.lab.name!r}", blocking=True
        )
        return fl.with_status(base.model_copy(update={"flags": [flag]}))

    flags: list[Flag] = []
    if h.schema_version is not None and h.schema_version < 2:
        flags.append(
            Flag(
                code="old-schema",
                message=f"schema {h.schema_version}, from an older vmlab: "
                "it records no inputs or artifacts to verify",
            )
        )
    elif report.run.lab_sha256 and report.run.lab_sha256 != lab_sha256(lab.lab.name):
        flags.append(Flag(code="lab-rules-differ", message="run under another version of the lab's lab.toml"))
    signature = "not_checked"
    if req.signature_key is not None and h.raw is not None:
        from vmlab.grade.sign import verify

        ok, why = verify(h.raw, req.signature_key)
        signature = "valid" if ok else ("absent" if "signature" not in h.raw else "invalid")
        if not ok:
            flags.append(Flag(code="signature", message=why))

    results, grade = grade_report(
        report,
        lab,
        report_dir=h.directory,
        timing=req.options.timing,
        require_artifacts=h.schema_version != 1,
    )
    integrity = next(r for r in results if r.id == INTEGRITY_ID)
    if integrity.outcome == "fail":
        code = "artifacts" if "artifact" in integrity.message else "integrity"
        flags.append(Flag(code=code, message=integrity.message))
    flags += fl.bound_flags(report, lab)

    if req.options.rerun and req.rerun_secret is not None:
        from vmlab.grade.rerun import rerun_checks

        extra = rerun_checks(h, report, lab, req.rerun_secret, progress=progress)
        results = results + extra
        grade = make_grade(results, req.options.timing)
        failed = [r for r in extra if r.required and r.outcome == "fail" and r.kind == CLAIM]
        errors = [r for r in extra if r.outcome == "error"]
        if failed:
            what = "; ".join(f"{r.id}: {r.message}" for r in failed[:3])
            message = f"the report claims what the submitted code does not do: {what}"
            flags.append(Flag(code="rerun-mismatch", message=message))
            grade = grade.model_copy(update={"score": 0.0})
        if errors:
            flags.append(
                Flag(code="rerun-error", message="; ".join(f"{r.id}: {r.message}" for r in errors[:3]))
            )
    return fl.with_status(
        base.model_copy(
            update={
                "score": grade.score,
                "max_score": grade.max_score,
                "exit_code": grade.exit_code,
                "accel": report.host.accel,
                "signature": signature,
                "flags": flags,
                "checks": results,
                "fingerprint": fingerprint(report),
                "measures": measures(report),
            }
        )
    )


def merge(parts: list[ClassResult]) -> ClassResult:
    """Shards of one class (same lab, rules and options) into one result, class-wide flags recomputed."""
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
    students: list[StudentResult] = [s for p in parts for s in p.students]
    return ClassResult(
        lab=first.lab,
        lab_sha256=first.lab_sha256,
        vmlab_version=first.vmlab_version,
        graded_at=max(p.graded_at for p in parts),
        shard=None,
        options=first.options,
        seconds=round(sum(p.seconds or 0.0 for p in parts), 3),
        students=fl.cross_flags(sorted(students, key=lambda s: (s.student, s.source))),
    )


def not_gradable(check_id: str, message: str) -> CheckResult:
    """An `error` outcome: infrastructure, never the student's loss."""
    return CheckResult(id=check_id, kind="rerun", outcome="error", points=0.0, message=message)
