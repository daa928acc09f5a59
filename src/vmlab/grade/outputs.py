"""Everything `vmlab grade` writes, from the class result alone:

OUT/class.json    the class result (tutors only: it names students and their flags)
OUT/class.csv     one row per student, for a spreadsheet
OUT/junit.xml     one test suite per student, one test case per check, one for the flags
OUT/gradescope/<hand-in>/results.json   what a course platform imports (Gradescope's format)

Every file and row is keyed by the hand-in (unique in the class), so two hand-ins never write one file.
A student's Gradescope output never names another student nor shows a hidden input or a tutor's
reason: a held score reads as "under review by the tutor". A held hand-in gets score 0 (or, with
`--held-output none`, no file); an invalid one gets no results.json: "not gradable" is not a zero,
and class.csv lists it for the tutor to handle.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from vmlab.errors import UsageError
from vmlab.grade.model import ClassResult, StudentResult, Written
from vmlab.grade.rubric import TEXT_KIND
from vmlab.report.io import write_atomic, writing
from vmlab.report.model import CheckResult

ELSEWHERE = "write the class outputs elsewhere with -o OUT/"

CSV_FIELDS = [
    "student",
    "handin",
    "status",
    "score",
    "max_score",
    "percent",
    "computed_score",
    "rubric_points",
    "rubric_pending",
    "decision",
    "exit_code",
    "accel",
    "flags",
    "run_id",
    "source",
]


def safe_name(student: str) -> str:
    """A student id as a file name: nothing that climbs out of the folder."""
    name = re.sub(r"[^A-Za-z0-9._@+-]", "_", student).lstrip(".")
    return name or "_"


def write_all(result: ClassResult, out: Path) -> dict[str, Path]:
    with writing(out, elsewhere=ELSEWHERE):
        out.mkdir(parents=True, exist_ok=True)
    paths = {
        "class.json": write_json(result, out / "class.json"),
        "class.csv": write_csv(result, out / "class.csv"),
        "junit.xml": write_junit(result, out / "junit.xml"),
    }
    held_none = result.options.held_output == "none"
    written: set[Path] = set()
    for s in result.students:
        if s.status != "invalid" and not (s.status == "review" and held_none):
            path = out / "gradescope" / safe_name(s.handin or s.student) / "results.json"
            written.add(write_gradescope(s, path, result.options.timing == "advisory"))
    # a results.json from an earlier grading into this folder must not outlive a hold or an invalid
    # verdict: an upload script would publish it
    for stale in (out / "gradescope").glob("*/results.json"):
        if stale not in written:
            stale.unlink()
            with contextlib.suppress(OSError):
                stale.parent.rmdir()
    paths["gradescope"] = out / "gradescope"
    return paths


def write_json(result: ClassResult, path: Path) -> Path:
    return write_atomic(path, result.model_dump_json(indent=2) + "\n", elsewhere=ELSEWHERE)


def read_class(path: Path) -> ClassResult:
    """class.json, bounded in size and nesting like a report (a shard's output may come from a runner)."""
    from pydantic import ValidationError

    from vmlab.report.io import check_nesting, read_bounded

    p = path / "class.json" if path.is_dir() else path
    raw = read_bounded(p, "class result", fix="pass the class.json that vmlab grade wrote")
    check_nesting(raw, "class result", str(p))
    try:
        return ClassResult.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "<root>"
        raise UsageError(f"{p} is not a vmlab class result: {where}: {first['msg']}") from None


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def write_csv(result: ClassResult, path: Path) -> Path:
    """Rows built in memory, then written in one atomic step."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    for s in result.students:
        pct = s.percent
        w.writerow(
            {
                "student": s.student,
                "handin": s.handin,
                "status": s.status,
                "score": _fmt(s.score),
                "max_score": _fmt(s.max_score),
                "percent": "" if pct is None else f"{pct:.1f}",
                "computed_score": _fmt(s.computed_score),
                "rubric_points": _fmt(s.rubric_points) if s.written else "",
                "rubric_pending": s.rubric_pending if s.written else "",
                "decision": "" if s.decision is None else s.decision.action,
                "exit_code": "" if s.exit_code is None else s.exit_code,
                "accel": s.accel or "",
                "flags": ";".join(sorted({f.code for f in s.flags})),
                "run_id": s.run_id or "",
                "source": s.source,
            }
        )
    for student in result.missing:  # on the roster, no hand-in: for the tutor, never a silent 0
        w.writerow({k: "" for k in CSV_FIELDS} | {"student": student, "status": "missing"})
    return write_atomic(path, buf.getvalue(), elsewhere=ELSEWHERE)


def _case_text(r: CheckResult) -> str:
    if r.outcome == "fail" and r.measured is not None:
        return f"measured {r.measured!r}, expected {r.expected}. {r.message}".strip()
    return r.message or r.expected


def junit_tree(result: ClassResult) -> ET.ElementTree:
    """One suite per student; required failures are <failure>, not gradable <error>, skipped <skipped>;
    flags are one more test case that fails, so CI shows a flagged hand-in in red."""
    advisory = result.options.timing == "advisory"
    root = ET.Element("testsuites", name=f"vmlab.{result.lab}")
    for s in result.students:
        name = s.handin or s.student
        suite = ET.SubElement(root, "testsuite", name=name)
        counts = {"failures": 0, "errors": 0, "skipped": 0}
        cases = 0
        for r in s.checks:
            cases += 1
            case = ET.SubElement(suite, "testcase", classname=f"{name}.{r.task or 'lab'}", name=r.id)
            if r.outcome == "error":
                counts["errors"] += 1
                ET.SubElement(
                    case, "error", message=r.message or "not gradable", type=r.kind
                ).text = _case_text(r)
            elif r.outcome == "skipped":
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=r.message or "skipped")
            elif r.outcome == "fail" and r.required and not (advisory and r.timing):
                counts["failures"] += 1
                ET.SubElement(
                    case, "failure", message=r.message or "check failed", type=r.kind
                ).text = _case_text(r)
            elif r.outcome == "fail":
                ET.SubElement(case, "system-out").text = f"not counted: {_case_text(r)}"
            w = s.written.get(r.id.removeprefix("q:")) if r.kind == TEXT_KIND else None
            if w is not None and w.state != "failed":
                ET.SubElement(case, "system-out").text = _written_text(w)
        cases += 1
        case = ET.SubElement(suite, "testcase", classname=f"{name}.hand-in", name="hand-in")
        if s.flags:
            tag = "error" if s.status == "invalid" else "failure"
            counts["errors" if tag == "error" else "failures"] += 1
            text = "\n".join(f"{f.code}: {f.message}" for f in s.flags)
            if s.decision is not None:
                text += f"\ndecision: {s.decision.action}: {s.decision.reason}"
            ET.SubElement(
                case, tag, message=f"{s.status}: {', '.join(f.code for f in s.flags)}", type="flag"
            ).text = text
        suite.set("tests", str(cases))
        for k, v in counts.items():
            suite.set(k, str(v))
    return ET.ElementTree(root)


def _written_text(w: Written) -> str:
    if w.state == "pending":
        return f"rubric pending: 0 of {w.max_points:g} points until the tutor grades the answer"
    said = f"rubric: {w.points or 0:g} of {w.max_points:g} points"
    return f"{said}: {w.comment}" if w.comment else said


def write_junit(result: ClassResult, path: Path) -> Path:
    tree = junit_tree(result)
    ET.indent(tree)
    buf = io.BytesIO()
    tree.write(buf, encoding="utf-8", xml_declaration=True)
    return write_atomic(path, buf.getvalue(), elsewhere=ELSEWHERE)


GRADESCOPE_NOTE = {
    "review": "This hand-in is under review by the tutor before its score is published.",
    "flagged": "This hand-in was flagged for the tutor's attention.",
    "decided": "The tutor has set this score after a review.",
}


def gradescope(s: StudentResult, advisory: bool = False) -> dict[str, Any]:
    """Gradescope's results.json: tests with score, max_score, status, output, visibility.

    Every counted check carries its points as max_score, also when it could not be graded (skipped,
    error: 0 of them, failing closed); checks that are not applicable or advisory carry 0. Re-run checks
    are visible after publication only, so hidden tests do not leak early. A held score is 0.
    """
    tests: list[dict[str, Any]] = []
    for r in s.checks:
        w = s.written.get(r.id.removeprefix("q:")) if r.kind == TEXT_KIND else None
        if w is not None:
            tests.append(_written_test(r, w))
            continue
        t: dict[str, Any] = {"name": r.id, "output": r.description or r.expected}
        if r.applicable and not (advisory and r.timing):
            t |= {"score": r.score, "max_score": r.points, "status": "passed" if r.passed else "failed"}
            if r.outcome in ("skipped", "error"):
                t["output"] = f"{t['output']}\nnot graded, 0 points: {r.message or r.outcome}".strip()
            elif r.outcome == "fail" and r.message:
                t["output"] = f"{t['output']}\n{r.message}".strip()
        else:
            t |= {"score": 0.0, "max_score": 0.0, "output": f"not counted: {r.message or r.outcome}"}
        t["visibility"] = "after_published" if r.kind.startswith("rerun") else "visible"
        tests.append(t)
    out: dict[str, Any] = {
        "score": s.score or 0.0,
        "tests": tests,
        "extra_data": {"student": s.student, "handin": s.handin, "status": s.status, "run_id": s.run_id},
    }
    if s.status in GRADESCOPE_NOTE:
        out["output"] = GRADESCOPE_NOTE[s.status]
    return out


def _written_test(r: CheckResult, w: Written) -> dict[str, Any]:
    """A written answer as Gradescope's manually graded questions behave: visible once published, the
    tutor's comment as its output; no status, so Gradescope shows score of max_score."""
    if w.state == "graded":
        output = w.comment or f"{w.points or 0:g} of {w.max_points:g} points"
    elif w.state == "pending":
        output = "your written answer is graded by the tutor"
    else:
        output = f"not graded, 0 points: {w.presence}"
    return {
        "name": r.id,
        "score": r.score,
        "max_score": r.points,
        "output": output,
        "visibility": "after_published",
    }


def write_gradescope(s: StudentResult, path: Path, advisory: bool = False) -> Path:
    return write_atomic(path, json.dumps(gradescope(s, advisory), indent=2) + "\n", elsewhere=ELSEWHERE)


def compare(old: ClassResult, new: ClassResult) -> list[dict[str, Any]]:
    """Each student's score before and after a rule or vmlab change; students in only one are listed too."""
    before = {s.handin or s.student: s for s in old.students}
    after = {s.handin or s.student: s for s in new.students}
    rows = []
    for student in sorted(before.keys() | after.keys()):
        a, b = before.get(student), after.get(student)
        old_pct = a.percent if a else None
        new_pct = b.percent if b else None
        rows.append(
            {
                "student": student,
                "old_score": a.score if a else None,
                "old_max": a.max_score if a else None,
                "new_score": b.score if b else None,
                "new_max": b.max_score if b else None,
                "old_percent": old_pct,
                "new_percent": new_pct,
                "delta_percent": None if old_pct is None or new_pct is None else round(new_pct - old_pct, 3),
                "old_status": a.status if a else "absent",
                "new_status": b.status if b else "absent",
                "changed_checks": _changed(a, b),
            }
        )
    return rows


def _changed(a: StudentResult | None, b: StudentResult | None) -> list[str]:
    if a is None or b is None:
        return []
    old = {r.id: r.outcome for r in a.checks}
    new = {r.id: r.outcome for r in b.checks}
    return [
        f"{k}: {old.get(k, '-')} -> {new.get(k, '-')}"
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    ]
