"""Rubric points for written answers: a CSV the tutor keeps (`vmlab grade --rubric rubric.csv`).

A text question (`kind = "text"` in lab.toml) passes automatically when the answer is present with at
least `min_words` words, and scores 0 of its points until a tutor grades it. The tutor's points live in
a CSV beside the hand-ins, passed on every run and to `grade merge` (as decisions.toml is), written by
hand or downloaded from the class site's question pages:

    handin,question,points,comment,override
    alice,interpreter-start-up,1.5,"names the imports, not how to measure them",
    bob,interpreter-start-up,2,,

`handin` is the hand-in key (class.csv's `handin`; a `student` column instead matches the student id,
when that student has one hand-in). `question` is the question id (`q:` in front is allowed). `points`
is 0 to the question's points in lab.toml (the points possible are the lab's, never the rubric's); an
empty cell leaves the answer pending. A row for an answer that is missing or too short gives no points
above 0 unless its `override` cell says yes (a tutor who accepted an answer handed in another way says
so explicitly); otherwise it is listed as not applied, like a row naming no hand-in.

Reading fails closed with one line naming the file, the line and the fix: an unknown column or
question, a question that is not a text question, points that are not a number or out of range, two
rows for one answer. A grading without the file has every written answer pending.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from vmlab.errors import UsageError
from vmlab.grade.model import StudentResult, Written
from vmlab.report.model import CheckResult, Report
from vmlab.spec.lab import Lab
from vmlab.spec.questions import TextQuestion

KEY_COLUMNS = ("handin", "student")
COLUMNS = (*KEY_COLUMNS, "question", "points", "comment", "override")
TEXT_KIND = "question-text"  # vmlab.check.questions.QUESTION_TEXT (not imported: it pulls the checks in)
PREFIX = "q:"
YES = {"yes", "y", "true", "1", "x"}
NO = {"", "no", "n", "false", "0"}
MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class RubricRow:
    key: str  # a hand-in key, or a student id when `by` is "student"
    question: str
    points: float | None  # None: left pending
    comment: str
    override: bool
    line: int


@dataclass(frozen=True)
class Rubric:
    path: str
    by: str  # "handin" or "student"
    rows: tuple[RubricRow, ...]


def _hint() -> str:
    return "columns handin,question,points[,comment,override]; the class site's question pages write one"


def read_rubric(path: Path) -> Rubric:
    """The rows of a rubric CSV, checked for everything that needs no lab (see the module docstring)."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UsageError(f"rubric {path} is larger than 10 MB", hint=_hint())
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets write a BOM
    except UnicodeDecodeError as e:
        raise UsageError(f"rubric {path} is not UTF-8 text (byte {e.start})", hint=_hint()) from None
    except OSError as e:
        raise UsageError(f"cannot read rubric {path}: {e.strerror}") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise UsageError(f"rubric {path}: unknown column {unknown[0]!r}", hint=_hint())
    keys = [h for h in header if h in KEY_COLUMNS]
    missing = [h for h in ("question", "points") if h not in header]
    if len(keys) != 1 or missing or len(set(header)) != len(header):
        what = (
            "a column twice" if len(set(header)) != len(header) else "handin (or student), question, points"
        )
        raise UsageError(f"rubric {path}: the header needs {what}", hint=_hint())
    by = keys[0]
    rows: list[RubricRow] = []
    seen: dict[tuple[str, str], int] = {}
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise UsageError(f"rubric {path} line {line}: {len(cells)} cells, the header has {len(header)}")
        cell = dict(zip(header, (c.strip() for c in cells), strict=False))
        key, question = cell.get(by, ""), cell.get("question", "").removeprefix(PREFIX)
        where = f"rubric {path} line {line}"
        if not key or not question:
            raise UsageError(f"{where}: {by} and question must not be empty", hint=_hint())
        pts = _points(cell.get("points", ""), where)
        flag = cell.get("override", "").lower()
        if flag not in YES | NO:
            raise UsageError(f"{where}: override {cell['override']!r}: write yes or leave it empty")
        if (key, question) in seen:
            raise UsageError(
                f"{where}: a second row for {by} {key!r}, question {question!r} (the first is line "
                f"{seen[key, question]})",
                hint="keep one row per answer",
            )
        seen[key, question] = line
        rows.append(RubricRow(key, question, pts, cell.get("comment", ""), flag in YES, line))
    return Rubric(path=str(path), by=by, rows=tuple(rows))


def _points(text: str, where: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where}: points {text!r} is not a number", hint="e.g. 1.5, or empty") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{where}: points {text!r} must be 0 or more")
    return value


def check_rubric(rubric: Rubric, lab: Lab) -> None:
    """Every row names a text question of the lab and gives at most its points (from lab.toml)."""
    questions = {q.id: q for q in lab.questions}
    texts = [q.id for q in lab.questions if isinstance(q, TextQuestion)]
    for r in rubric.rows:
        where = f"rubric {rubric.path} line {r.line}"
        q = questions.get(r.question)
        if q is None:
            raise UsageError(
                f"{where}: {r.question!r} is not a question of lab {lab.lab.name}",
                hint=f"its text questions: {', '.join(texts) or 'none'}",
            )
        if not isinstance(q, TextQuestion):
            raise UsageError(
                f"{where}: {r.question!r} is a {q.kind} question, graded automatically; a rubric gives "
                "points to text questions only",
                hint=f"its text questions: {', '.join(texts) or 'none'}",
            )
        if r.points is not None and r.points > q.points:
            raise UsageError(
                f"{where}: {r.points:g} points for {r.question!r}, which is worth {q.points:g} (lab.toml)",
                hint=f"give 0 to {q.points:g}",
            )


def written_answers(report: Report, results: list[CheckResult]) -> dict[str, Written]:
    """Each text question's answer as the report records it, and what the presence check said."""
    answers = report.predictions.answers if report.predictions is not None else {}
    out = {}
    for r in results:
        if r.kind == TEXT_KIND and r.id.startswith(PREFIX):
            qid = r.id.removeprefix(PREFIX)
            given = answers.get(qid)
            out[qid] = Written(
                answer=given if isinstance(given, str) else "",
                max_points=r.points,
                presence=r.message,
                state="pending" if r.outcome == "pass" else "failed",
            )
    return out


def apply_rubric(
    students: list[StudentResult], rubric: Rubric | None, timing: str = "graded", whole: bool = True
) -> tuple[list[StudentResult], list[str]]:
    """Every hand-in's text questions scored from the rubric (none: all pending), its computed score
    again; and the rows not applied, one line each (`whole`: the students are the whole class, so a
    row naming none of them is listed). Applying is idempotent: a hand-in starts from the presence
    check every time, so a merge with another rubric replaces the points."""
    rows = rubric.rows if rubric is not None else ()
    by = rubric.by if rubric is not None else "handin"
    mine: dict[str, list[RubricRow]] = {}
    for r in rows:
        mine.setdefault(r.key, []).append(r)
    unused: list[str] = []
    owners: dict[str, list[str]] = {}
    for s in students:
        owners.setdefault((s.handin or s.student) if by == "handin" else s.student, []).append(s.handin)
    for key, rs in mine.items():
        if key not in owners:
            if whole:
                unused += [f"{key} {r.question}: no such {by}" for r in rs]
        elif len(owners[key]) > 1:
            unused += [
                f"{key} {r.question}: {len(owners[key])} hand-ins; name one in a handin column" for r in rs
            ]
    out = []
    for s in students:
        key = (s.handin or s.student) if by == "handin" else s.student
        given = mine.get(key, []) if len(owners.get(key, [])) == 1 else []
        out.append(_apply_one(s, {r.question: r for r in given}, unused, timing))
    return out, unused


def _apply_one(s: StudentResult, rows: dict[str, RubricRow], unused: list[str], timing: str) -> StudentResult:
    if s.status == "invalid" or s.computed_score is None:
        unused += [f"{s.handin} {q}: the hand-in is invalid (no score)" for q in rows]
        return s
    written = dict(s.written)
    checks = []
    for c in s.checks:
        qid = c.id.removeprefix(PREFIX)
        if c.kind != TEXT_KIND or not c.id.startswith(PREFIX):
            checks.append(c)
            continue
        w = written.get(qid) or Written(
            max_points=c.points, presence=c.message, state="pending" if c.outcome == "pass" else "failed"
        )
        base = w.model_copy(
            update={
                "state": "pending" if c.outcome == "pass" else "failed",
                "points": None,
                "comment": "",
                "override": False,
                "max_points": c.points,
            }
        )
        row = rows.get(qid)
        if row is not None and base.state == "failed" and not row.override:
            if row.points:  # 0 for a failed answer is what it has anyway
                unused.append(
                    f"{s.handin} {qid}: {row.points:g} points not applied, the answer did not pass "
                    f"({base.presence}); write yes in its override cell to give them anyway"
                )
            row = None
        if row is None or row.points is None:
            written[qid] = base
            checks.append(c.model_copy(update={"score": 0.0, "message": base.presence}))
            continue
        pts = min(row.points, c.points)  # the lab's points cap it (checked on reading, too)
        written[qid] = base.model_copy(
            update={
                "state": "graded",
                "points": pts,
                "comment": row.comment,
                "override": base.state == "failed",
            }
        )
        said = f"rubric: {pts:g} of {c.points:g} points" + (f": {row.comment}" if row.comment else "")
        if base.state == "failed":
            said += f" (override; {base.presence})"
        checks.append(c.model_copy(update={"score": pts, "message": said}))
    leftover = [q for q in rows if q not in written]
    unused += [f"{s.handin} {q}: this hand-in was not graded on that question" for q in leftover]
    return s.model_copy(
        update={"checks": checks, "written": written, "computed_score": checks_score(checks, timing)}
    )


def checks_score(checks: list[CheckResult], timing: str) -> float:
    """What the checks give, as vmlab.grade.verdict.grade_one computes it: failed integrity zeroes
    it (make_grade), and so does a failed re-run check of something the report claims."""
    from vmlab.check.grader import make_grade
    from vmlab.grade.model import CLAIM

    grade = make_grade(checks, "advisory" if timing == "advisory" else "graded")
    if any(c.required and c.outcome == "fail" and c.kind == CLAIM for c in checks):
        return 0.0
    return grade.score
