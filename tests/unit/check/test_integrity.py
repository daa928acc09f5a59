"""A report edited by hand fails `integrity`: summaries, derived figures and artifacts are re-derived."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from tests.helpers import measured
from tests.unit.check.builders import make_lab

from vmlab.check.grader import grade_report
from vmlab.check.integrity import integrity_result
from vmlab.report.model import Artifact, Experiment, Measurement, Report, StepRecord, Summary
from vmlab.report.stats import summarize

RUNS = [{"path": "a.counts.runs", "expr": "len(a.samples)"}]


def test_untouched_report_passes(make_report: Callable[..., Report]) -> None:
    exp = measured([1.0, 2.0, 3.0]).model_copy(update={"counts": {"runs": 3}})
    r = make_report({"a": exp, "g": {"x": measured([5.0, 6.0])}})
    result = integrity_result(r, make_lab([], derived=RUNS), None)
    assert result.outcome == "pass" and result.required and result.points == 0
    assert result.measured == {"summaries": 2, "derived": 1, "artifacts verified": 0}


def test_edited_median_fails_naming_the_path(make_report: Callable[..., Report]) -> None:
    exp = measured([1.0, 2.0, 3.0])
    assert exp.summary is not None
    # the median of 1, 2, 3 is 2; a student "improves" it to 1.5
    edited = exp.model_copy(update={"summary": exp.summary.model_copy(update={"median": 1.5})})
    r = make_report({"true": edited})
    results, grade = grade_report(r, make_lab([]))
    assert results[-1].id == "integrity" and results[-1].outcome == "fail"
    assert results[-1].message == "summary does not match samples at true"
    assert grade.exit_code == 1


def test_edited_stage_and_group_member(make_report: Callable[..., Report]) -> None:
    bad = Measurement(
        unit="s", samples=[1.0, 2.0], summary=Summary(n=2, median=1.5, min=1.0, max=9.0, iqr=1.0)
    )
    r = make_report(
        {
            "startup": {"vm": Experiment(unit="s", stages={"boot": bad})},
            "x": Experiment(unit="s", samples=[], summary=summarize([1.0])),  # a summary with no samples
        }
    )
    msg = integrity_result(r, make_lab([]), None).message
    assert "summary does not match samples at startup.vm.stages.boot" in msg
    assert "summary does not match samples at x" in msg


def test_derived_count_mismatch(make_report: Callable[..., Report]) -> None:
    # 20 runs claimed, 3 samples kept
    exp = measured([1.0, 2.0, 3.0]).model_copy(update={"counts": {"runs": 20}})
    result = integrity_result(make_report({"a": exp}), make_lab([], derived=RUNS), None)
    assert result.outcome == "fail"
    assert result.message == "derived figure does not match at a.counts.runs: 20, but len(a.samples) gives 3"


def test_derivation_over_members_and_absent_figures(make_report: Callable[..., Report]) -> None:
    derived = [{"path": "{member}.counts.runs", "expr": "len(`{member}.samples`)", "each": ["a", "b"]}]
    ok = measured([1.0]).model_copy(update={"counts": {"runs": 1}})
    result = integrity_result(make_report({"a": ok}), make_lab([], derived=derived), None)
    assert result.outcome == "pass" and result.measured["derived"] == 1  # b is absent: nothing to re-derive


def _with_artifact(make_report: Callable[..., Report], sha: str) -> Report:
    r = make_report({})
    art = Artifact(name="log.txt", step="a", path="artifacts/a/log.txt", size=5, sha256=sha)
    return r.model_copy(update={"steps": {"a": StepRecord(status="ok", artifacts=[art])}})


def test_artifacts(make_report: Callable[..., Report], tmp_path: Path) -> None:
    sha = hashlib.sha256(b"hello").hexdigest()
    r = _with_artifact(make_report, sha)
    lab = make_lab([])
    absent = integrity_result(r, lab, tmp_path)
    assert absent.outcome == "pass" and "not verified: artifacts/a/log.txt" in absent.message
    assert integrity_result(r, lab, tmp_path, require_artifacts=True).outcome == "fail"
    f = tmp_path / "artifacts" / "a" / "log.txt"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"hello")
    good = integrity_result(r, lab, tmp_path)
    assert good.outcome == "pass" and good.measured["artifacts verified"] == 1 and good.message == ""
    f.write_bytes(b"hellO")
    bad = integrity_result(r, lab, tmp_path)
    assert bad.outcome == "fail" and bad.message == "artifact artifacts/a/log.txt does not match its sha256"


def test_artifact_outside_the_report_folder(make_report: Callable[..., Report], tmp_path: Path) -> None:
    r = make_report({})
    art = Artifact(name="x", step="a", path="../x", size=0, sha256="0" * 64)
    r = r.model_copy(update={"artifacts": [art]})
    assert (
        integrity_result(r, make_lab([]), tmp_path).message
        == "artifact ../x is not inside the report's folder"
    )
