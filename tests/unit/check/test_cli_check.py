"""`vmlab check` on hand-built warm-up reports: exit codes, --task, --timing, --json, --junit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vmlab.cli.main import app
from vmlab.report.io import save_report
from vmlab.report.model import Experiment, Report, StepRecord, StepStatus
from vmlab.report.stats import summarize

runner = CliRunner()


def startup(median: float, runs: int = 20) -> Experiment:
    samples = [median] * runs
    return Experiment(unit="s", samples=samples, summary=summarize(samples), counts={"runs": runs})


@pytest.fixture
def write(make_report: Callable[..., Report], tmp_path: Path) -> Callable[..., Path]:
    def make(*, python: float = 0.01, uname: str | None = "Linux\n", uname_status: StepStatus = "ok") -> Path:
        exps = {"true": startup(0.001), "python": startup(python)}
        if uname is not None:
            exps["uname"] = Experiment(unit="s", text=uname)
        steps = {"true": StepRecord(status="ok"), "python": StepRecord(status="ok")}
        steps["uname"] = StepRecord(status=uname_status, message="" if uname_status == "ok" else "no uname")
        r = make_report(exps).model_copy(update={"steps": steps})
        return save_report(r, tmp_path / "r.json")

    return make


def run(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["check", *args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_all_pass_exits_0(write: Callable[..., Path]) -> None:
    code, out = run(str(write()))
    grade = out["grade"]
    assert code == 0 and isinstance(grade, dict)
    # 6 checks of 1 point each, and warmup's questions worth 6 more: no answers were handed in, so
    # they score 0 of their points (fail closed) without failing the verdict (they are not required)
    assert (grade["exit_code"], grade["score"], grade["max_score"]) == (0, 6.0, 12.0)


def test_timing_fail_exits_1_unless_advisory(write: Callable[..., Path]) -> None:
    path = write(python=0.0015)  # 1.5 times /bin/true: python-slower (lo = 2) fails
    code, _ = run(str(path))
    assert code == 1
    code, out = run(str(path), "--timing", "advisory")
    checks = {c["id"]: c for c in out["checks"]}
    assert code == 0 and checks["python-slower"]["outcome"] == "fail"
    bad = runner.invoke(app, ["check", str(path), "--timing", "relaxed"])
    assert bad.exit_code == 2 and "--timing 'relaxed': use graded or advisory" in bad.output


def test_step_error_exits_3_and_task_filter(write: Callable[..., Path]) -> None:
    path = write(uname=None, uname_status="error")
    code, out = run(str(path))
    checks = {c["id"]: c for c in out["checks"]}
    assert code == 3 and checks["kernel-name"]["outcome"] == "error"
    assert checks["kernel-name"]["message"] == "step uname failed: no uname"
    code, out = run(str(path), "--task", "t1-native")
    assert code == 0 and {c["task"] for c in out["checks"]} == {"t1-native", None}


def test_tampered_summary_fails_integrity(write: Callable[..., Path]) -> None:
    path = write()
    data = json.loads(path.read_text())
    data["experiments"]["true"]["summary"]["median"] = 0.0001
    path.write_text(json.dumps(data))
    code, out = run(str(path))
    checks = {c["id"]: c for c in out["checks"]}
    assert code == 1 and checks["integrity"]["message"] == "summary does not match samples at true"
    assert out["grade"]["score"] == 0.0


def test_junit_and_text_verdict(write: Callable[..., Path], tmp_path: Path) -> None:
    path = write(uname="Darwin\n")
    junit = tmp_path / "j.xml"
    result = runner.invoke(app, ["check", str(path), "--junit", str(junit)])
    assert result.exit_code == 1
    row = next(line for line in result.stdout.splitlines() if "kernel-name" in line)
    assert row.startswith("FAIL")
    suite = ET.parse(junit).getroot().find("testsuite")
    # 6 checks + integrity + warmup's 5 questions (unanswered: not counted as failures, not required)
    assert suite is not None and suite.get("failures") == "1" and suite.get("tests") == "12"


def test_invalid_report_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text("{")
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 2


def test_unknown_task_exits_2(write: Callable[..., Path]) -> None:
    result = runner.invoke(app, ["check", str(write()), "--task", "t9"])
    assert result.exit_code == 2 and "no task 't9'" in result.stderr
