"""The verdict and the lab sheet fit 80 and 100 columns, and nothing that matters is cut."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.helpers import measured
from tests.unit.check.builders import make_lab

from vmlab.check.grader import grade_report
from vmlab.check.render import render_lab_sheet, render_verdict, rendered_lines
from vmlab.labs.catalog import lab_names, lab_path, load_lab
from vmlab.report.model import CheckResult, Experiment, Grade, Report, StepRecord
from vmlab.spec.lab import Lab

Graded = tuple[Report, Lab, list[CheckResult], Grade]
LONG = "a-rather-long-check-identifier-that-names-what-it-tests"


@pytest.fixture
def graded(report_with_steps: Callable[..., Report]) -> Graded:

    lab = make_lab(
        [
            {
                "id": LONG,
                "task": "t1",
                "kind": "exact",
                "path": "a.counts.runs",
                "value": 20,
                "description": "twenty starts were measured, as the task sheet asks for every program",
            },
            {"id": "ok", "task": "t1", "kind": "present", "path": "a"},
            {"id": "opt", "task": "t1", "kind": "range", "path": "a", "hi": 0.0, "required": False},
            {"id": "gone", "task": "t2", "kind": "present", "path": "c"},
        ]
    )
    a = measured([1.0, 2.0]).model_copy(update={"counts": {"runs": 2}})
    r = report_with_steps({"a": a}, a="ok", c="error")
    results, grade = grade_report(r, lab)
    return r, lab, results, grade


@pytest.mark.parametrize("width", [80, 100])
def test_verdict_fits_and_shows_what_failed(graded: Graded, width: int) -> None:
    report, lab, results, grade = graded
    lines = rendered_lines(render_verdict(report, lab, results, grade, verbose=False, width=width), width)
    assert all(len(line.rstrip()) <= width for line in lines)
    text = "\n".join(lines)
    assert "FAIL (exit 1)" in lines[0]
    # 2 of the 4 required checks passed (ok and integrity); the optional one failed
    assert "required 2/4 passed · optional 0/1 passed" in text
    assert "…" not in text
    flat = "".join(text.split())  # the id may be folded over lines, never cut
    assert LONG in flat and "measured2,expected==20" in flat
    assert "stepcfailed:csaidno" in flat  # the error and why
    assert "opt" in text and " ok " not in text  # passing checks only with --verbose


def test_verbose_lists_every_check(graded: Graded) -> None:
    report, lab, results, grade = graded
    lines = rendered_lines(render_verdict(report, lab, results, grade, verbose=True, width=80), 80)
    marks = [
        line.split()[0]
        for line in lines
        if line.split() and line.split()[0] in {"pass", "FAIL", "fail", "ERROR"}
    ]
    assert sorted(marks) == ["ERROR", "FAIL", "fail", "pass", "pass"]  # 4 checks and integrity


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("name", lab_names())
def test_lab_sheet_whole_and_fits(name: str, width: int) -> None:
    lab = load_lab(name)
    sheet = lab_path(name).parent / "README.md"
    text = sheet.read_text() if sheet.is_file() else None
    lines = rendered_lines(render_lab_sheet(lab, text, width), width)
    assert all(len(line.rstrip()) <= width for line in lines)
    # the first column of the checks table, read down: a folded id continues on the next line
    first = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
    for c in lab.checks:
        assert c.id in first
    assert "…" not in "".join(line for line in lines if line.startswith("┃"))  # headers whole


def test_numbered_task_is_not_cropped() -> None:
    """warmup's t1 runs over two source lines; rich cropped it after 'Why' on a soft-wrapping console."""
    lab = load_lab("warmup")
    text = (lab_path("warmup").parent / "README.md").read_text()
    flat = " ".join(" ".join(rendered_lines(render_lab_sheet(lab, text, 80), 80)).split())
    assert "Why is the first run often the slowest? (Page cache, dynamic loader.)" in flat
    assert "How many times more expensive than /bin/true is it on your machine?" in flat


def test_group_member_rows(make_report: Callable[..., Report]) -> None:

    lab = make_lab([{"id": "o", "kind": "present", "each": ["a", "c"], "path": "{member}"}])
    r = make_report({"a": Experiment(unit="s")}).model_copy(update={"steps": {"a": StepRecord(status="ok")}})
    results, grade = grade_report(r, lab)
    text = "\n".join(rendered_lines(render_verdict(r, lab, results, grade, verbose=True, width=80), 80))
    assert "o[a] · t1" in text and "o[c] · t2" in text and "step c did not run" in text
