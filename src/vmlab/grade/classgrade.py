"""Grade every hand-in of a class against one lab, a shard of them, or merge shards.

One hand-in's verdict (vmlab.grade.verdict): the lab's checks for the tasks graded (`--task`, default
every task: the points possible come from the lab, never from the report) and the integrity check
(artifacts required: a hand-in is the report with its `artifacts/`), then flags; the class-wide flags
and the policy decide the published score (vmlab.grade.publish). A hand-in that cannot be graded at all
(unreadable, an unknown or newer schema, another lab) is `invalid`, with no score rather than a zero.
With `--rerun`, the student's recorded code runs again on hidden inputs. A failed re-run check of kind
`rerun-claim` (the report claims what the check re-tests, e.g. a candidate that passed every public
oracle, or the hand-in withholds the code a step that ran read) zeroes the score, as failed integrity
does. Other failed re-run checks only fail, like any check: an honest, wrong engine is not a forgery. A
re-run that could not be done at all is the runner's fault: flagged `rerun-error`, so the grade is held
for review.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vmlab import __version__
from vmlab.errors import UsageError, VmlabError
from vmlab.grade import flags as fl
from vmlab.grade.handins import HandIn, discover, load
from vmlab.grade.model import ClassOptions, ClassResult, Decision, StudentResult
from vmlab.grade.publish import publish
from vmlab.grade.request import GradeRequest as GradeRequest  # re-exported: callers name it here
from vmlab.grade.request import Progress
from vmlab.grade.roster import Roster
from vmlab.grade.rubric import Rubric, apply_rubric, check_rubric
from vmlab.grade.verdict import grade_one, skeleton_hashes
from vmlab.spec.lab import Lab

if TYPE_CHECKING:
    from vmlab.grade.nearcopy import NearCopy


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
