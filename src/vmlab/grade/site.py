"""The class in a browser: a static site (no server) written with jinja2.

`index.html` is the class page: the pass rate of every check across the class as a heatmap, the
distribution of each measured value split by the accelerator the hand-in's guests used (KVM and TCG
figures differ by orders of magnitude, so mixing them would hide both), and the flagged hand-ins.
`students/<id>.html` is one page per hand-in: its verdicts, and a plot of every measured figure with
the concept it illustrates (the description of the lab step that measured it). `questions/<id>.html`
is one page per written (text) question: every hand-in's answer side by side, with a points box and a
comment per answer and a button that downloads the rubric CSV (built in the browser, no server) for
`vmlab grade --rubric`, pre-filled with the points of the class.json the site was built from. Plots
are inline SVG, so the site is a folder of files that opens from disk, from CI artifacts or from any
web server.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmlab import __version__
from vmlab.errors import UsageError
from vmlab.grade.model import STATUSES, ClassResult, StudentResult
from vmlab.grade.outputs import read_class, safe_name
from vmlab.report.model import Report
from vmlab.spec.lab import Lab

ACCEL_COLOURS = {"kvm": "#1b7837", "tcg": "#b2182b", "none": "#4d4d4d"}


@dataclass
class Plot:
    title: str
    concept: str
    unit: str
    svg: str


def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("vmlab.grade", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def _scale(values: list[float]) -> tuple[float, float, bool]:
    lo, hi = min(values), max(values)
    log = lo > 0 and hi / lo > 50  # spans orders of magnitude: a log axis keeps both ends readable
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    return lo, hi, log


def strip_svg(groups: dict[str, list[float]], unit: str, width: int = 560) -> str:
    """One row of dots per group (accelerator or sample set) on a shared axis; median as a bar."""
    values = [v for vs in groups.values() for v in vs if math.isfinite(v)]
    if not values:
        return ""
    lo, hi, log = _scale(values)
    row, left, right = 26, 70, 20
    height = row * len(groups) + 30

    def x(v: float) -> float:
        t = (math.log10(v) if log else v) if (not log or v > 0) else lo
        return left + (t - lo) / (hi - lo) * (width - left - right)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (name, vs) in enumerate(groups.items()):
        y = 16 + i * row
        colour = ACCEL_COLOURS.get(name, "#2166ac")
        parts.append(f'<text x="4" y="{y + 4}" font-size="11">{_esc(name)} (n={len(vs)})</text>')
        for v in vs:
            if math.isfinite(v):
                parts.append(f'<circle cx="{x(v):.1f}" cy="{y}" r="3" fill="{colour}" fill-opacity="0.6"/>')
        if vs:
            med = sorted(vs)[len(vs) // 2]
            parts.append(
                f'<line x1="{x(med):.1f}" x2="{x(med):.1f}" y1="{y - 8}" y2="{y + 8}" stroke="black"/>'
            )
    axis = height - 8
    for v, anchor in ((min(values), "start"), (max(values), "end")):
        parts.append(
            f'<text x="{x(v):.1f}" y="{axis}" font-size="10" text-anchor="{anchor}">'
            f"{v:.4g} {_esc(unit)}</text>"
        )
    if log:
        parts.append(
            f'<text x="{width // 2}" y="{axis}" font-size="10" text-anchor="middle">log scale</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _concepts(lab: Lab | None, report: Report) -> dict[str, str]:
    """experiment id -> what it illustrates: the description of the step that produced it."""
    if lab is None:
        return {}
    out: dict[str, str] = {}
    for step_id, step in lab.experiments.items():
        rec = report.steps.get(step_id)
        for exp in [step_id, *(rec.experiments if rec else [])]:
            out.setdefault(exp, step.description or lab.lab.title)
    return out


def report_plots(report: Report, lab: Lab | None) -> list[Plot]:
    concepts = _concepts(lab, report)
    plots: list[Plot] = []
    for where, exp in report.each_experiment():
        sets = {"samples": exp.samples} if exp.samples else {}
        sets |= {f"stage {k}": m.samples for k, m in exp.stages.items() if m.samples}
        svg = strip_svg(sets, exp.unit) if sets else ""
        if svg:
            plots.append(Plot(where, concepts.get(where.split(".")[0], ""), exp.unit, svg))
    return plots


def heatmap(result: ClassResult) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows: checks in lab order; the pass rate over the hand-ins where the check was graded."""
    order: list[str] = []
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # pass, graded, not gradable
    for s in result.students:
        for r in s.checks:
            if r.id not in tally:
                order.append(r.id)
            t = tally[r.id]
            if r.outcome in ("pass", "fail"):
                t[1] += 1
                t[0] += r.outcome == "pass"
            else:
                t[2] += 1
    rows = []
    for cid in order:
        passed, graded, other = tally[cid]
        rate = passed / graded if graded else None
        rows.append(
            {
                "id": cid,
                "passed": passed,
                "graded": graded,
                "other": other,
                "rate": rate,
                "colour": _heat(rate),
            }
        )
    return order, rows


def _heat(rate: float | None) -> str:
    if rate is None:
        return "#dddddd"
    r = int(215 - 180 * rate)
    g = int(48 + 140 * rate)
    return f"rgb({r},{g},70)"


def distributions(result: ClassResult) -> list[Plot]:
    """Every measured value across the class, one row per host accelerator."""
    by_path: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    units: dict[str, str] = {}
    for s in result.students:
        if s.status == "invalid":
            continue
        for path, m in s.measures.items():
            by_path[path][s.accel or "none"].append(m.value)
            units[path] = m.unit
    return [
        Plot(
            path,
            f"medians of {sum(map(len, groups.values()))} hand-ins, by accelerator",
            units[path],
            strip_svg(dict(sorted(groups.items())), units[path]),
        )
        for path, groups in sorted(by_path.items())
    ]


def _load_lab(name: str | None) -> Lab | None:
    from vmlab.labs.catalog import load_lab

    if not name:
        return None
    try:
        return load_lab(name)
    except UsageError:
        return None


def _student_report(s: StudentResult) -> Report | None:
    from vmlab.grade.handins import HandIn, load

    if s.status == "invalid" or not s.report_path or not Path(s.report_path).is_file():
        return None  # an invalid hand-in (a symlink out of its folder, say) is never read again
    return load(HandIn(path=Path(s.report_path), name_id=s.handin or s.student, shown=s.source)).report


def build_site(source: Path, dest: Path) -> Path:
    """A class site from OUT/ (class.json) or a one-report site from a report.json; returns index.html."""
    if (source.is_dir() and (source / "class.json").is_file()) or source.name == "class.json":
        result = read_class(source)
    elif source.is_file() or (source / "report.json").is_file():
        result = _single(source if source.is_file() else source / "report.json")
    else:
        raise UsageError(
            f"{source} is neither a report nor a folder with class.json", hint="vmlab grade ... -o OUT/"
        )
    env = _env()
    lab = _load_lab(result.lab)
    (dest / "students").mkdir(parents=True, exist_ok=True)
    pages: dict[str, str] = {}  # hand-in key -> page; keys are unique in a class
    for s in result.students:
        key = s.handin or s.student
        name = f"students/{safe_name(key)}.html"
        if name in pages.values():  # a class.json of format 1 may repeat a student id
            name = f"students/{safe_name(key)}-{len(pages)}.html"
        pages[key] = name
    for s in result.students:
        report = _student_report(s)
        name = pages[s.handin or s.student]
        html = env.get_template("student.html.j2").render(
            s=s,
            lab=result.lab,
            plots=report_plots(report, lab) if report is not None else [],
            report=report,
            version=__version__,
        )
        (dest / name).write_text(html)
    questions = written_questions(result, pages)
    _write_question_pages(env, result, questions, dest)
    _, rows = heatmap(result)
    index = dest / "index.html"
    index.write_text(
        env.get_template("class.html.j2").render(
            result=result,
            rows=rows,
            dists=distributions(result),
            flagged=[s for s in result.students if s.flags or s.decision is not None],
            statuses=STATUSES,
            pages=pages,
            questions=questions,
            title=lab.lab.title if lab else result.lab,
            version=__version__,
            built=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
    )
    return index


def written_questions(result: ClassResult, pages: dict[str, str]) -> list[dict[str, Any]]:
    """Each text question graded in the class (in check order), with every gradable hand-in's answer,
    its state and the rubric points and comment it has now."""
    from vmlab.grade.rubric import PREFIX, TEXT_KIND

    found: dict[str, dict[str, Any]] = {}
    for s in result.students:
        for r in s.checks:
            if r.kind != TEXT_KIND or not r.id.startswith(PREFIX):
                continue
            qid = r.id.removeprefix(PREFIX)
            q = found.setdefault(
                qid,
                {"id": qid, "prompt": r.description, "points": r.points, "answers": [], "page": ""},
            )
            w = s.written.get(qid)
            if w is None:
                continue
            q["answers"].append(
                {
                    "handin": s.handin or s.student,
                    "page": pages[s.handin or s.student],
                    "answer": w.answer,
                    "state": w.state,
                    "presence": w.presence,
                    "points": w.points,
                    "comment": w.comment,
                    "override": w.override,
                }
            )
    names: set[str] = set()
    for q in found.values():
        name = f"questions/{safe_name(q['id'])}.html"
        while name in names:
            name = name.removesuffix(".html") + "_.html"
        names.add(name)
        q["page"] = name
        q["counts"] = {
            k: sum(1 for a in q["answers"] if a["state"] == k) for k in ("graded", "pending", "failed")
        }
    return list(found.values())


def _write_question_pages(env: Any, result: ClassResult, questions: list[dict[str, Any]], dest: Path) -> None:
    rows = [
        {
            "handin": a["handin"],
            "question": q["id"],
            "points": f"{a['points']:g}",
            "comment": a["comment"],
            "override": a["override"],
        }
        for q in questions
        for a in q["answers"]
        if a["points"] is not None
    ]
    key = f"{result.lab}/{result.lab_sha256[:12]}/{result.graded_at.isoformat()}"
    if questions:
        (dest / "questions").mkdir(parents=True, exist_ok=True)
    for q in questions:
        html = env.get_template("question.html.j2").render(
            q=q,
            answers=q["answers"],
            lab=result.lab,
            data={"key": key, "rows": rows},
            version=__version__,
        )
        (dest / q["page"]).write_text(html)


def _single(path: Path) -> ClassResult:
    """One report graded as a class of one, so the same pages serve a student checking their own run."""
    from vmlab.grade.classgrade import GradeRequest, grade_class

    return grade_class(GradeRequest(hand_ins=[path]))
