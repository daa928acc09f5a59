"""The isa-emulation lab end to end: real engines, real child processes for the candidate, real grading."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.helpers import failed_verdicts
from typer.testing import CliRunner

from vmlab.cli.main import app

runner = CliRunner()
SKELETON = Path(__file__).resolve().parents[3] / "labs" / "isa-emulation" / "skeleton" / "engine.py"

CORRECT_BODY = """\
        if op == 1:
            a = 0
        elif op == 2:
            a += 3
        elif op == 3:
            a -= 1
        elif op == 4:
            l = a
        else:
            l -= 1
            if l {cmp} 0:
                ip -= 7
"""


def student(tmp_path: Path, cmp: str = ">") -> Path:
    """The skeleton with task 1 done; cmp='>=' is the classic off-by-one in BACK7."""
    src = SKELETON.read_text()
    src = re.sub(
        r"        # TODO task 1.*\n        raise NotImplementedError.*\n", CORRECT_BODY.format(cmp=cmp), src
    )
    assert "NotImplementedError" not in src
    path = tmp_path / f"engine_{'ok' if cmp == '>' else 'bad'}.py"
    path.write_text(src)
    return path


def grade(report: Path) -> tuple[int, dict[str, dict[str, object]]]:
    result = runner.invoke(app, ["check", str(report), "--json"])
    return result.exit_code, {c["id"]: c for c in json.loads(result.stdout)["checks"]}


@pytest.mark.slow
def test_default_lab_run_passes_every_required_check(tmp_path: Path, vmlab_home: Path) -> None:
    report = tmp_path / "r.json"
    result = runner.invoke(app, ["lab", "run", "isa-emulation", "-o", str(report)])
    assert result.exit_code == 0, result.output
    _, checks = grade(report)
    assert failed_verdicts(list(checks.values())) == []
    assert checks["oracle-S4[candidate]"]["measured"] == "A=138 instructions=21516018"
    # the reference stood in, and the report says so
    assert checks["candidate-is-student"]["outcome"] == "fail"


def _candidate_run(tmp_path: Path, engine: Path, *extra: str) -> dict[str, dict[str, object]]:
    report = tmp_path / "r.json"
    result = runner.invoke(
        app,
        [
            "lab",
            "run",
            "isa-emulation",
            "--task",
            "t1-interpret",
            "--input",
            f"engine={engine}",
            "-o",
            str(report),
            "--set",
            "switch.scenarios=[3]",
            "--set",
            "candidate.scenarios=[1,3]",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["inputs"]["engine"]["name"] == engine.name and data["inputs"]["engine"]["source"] == "student"
    code, checks = grade(report)
    # other engines did not run in this task: their checks are skipped (not gradable), or a check failed
    assert code in (1, 3)
    assert all(c["outcome"] == "skipped" for c in checks.values() if c.get("task") == "t4-translate")
    return checks


def test_correct_student_engine_passes_the_oracle_checks(tmp_path: Path, vmlab_home: Path) -> None:
    checks = _candidate_run(tmp_path, student(tmp_path))
    for cid in ("oracle-S1[candidate]", "oracle-S3[candidate]", "candidate-is-student"):
        assert checks[cid]["outcome"] == "pass", checks[cid]


def test_off_by_one_in_back7_fails_with_a_readable_message(tmp_path: Path, vmlab_home: Path) -> None:
    checks = _candidate_run(tmp_path, student(tmp_path, ">="))
    assert checks["oracle-S1[candidate]"]["outcome"] == "pass"  # no loops in S1: the bug hides there
    s3 = checks["oracle-S3[candidate]"]
    assert s3["outcome"] == "fail"
    assert s3["message"] == "measured 'A=95 instructions=778299', expected == 'A=95 instructions=719821'"


def test_unfinished_skeleton_reports_where_it_stopped(tmp_path: Path, vmlab_home: Path) -> None:
    checks = _candidate_run(tmp_path, SKELETON)
    s1 = checks["oracle-S1[candidate]"]
    assert s1["outcome"] == "fail"
    assert "NotImplementedError: opcode 2 at 0 is not implemented yet (engine.py:" in str(s1["measured"])


def test_endless_student_engine_is_stopped_at_the_timeout(tmp_path: Path, vmlab_home: Path) -> None:
    endless = tmp_path / "endless.py"
    endless.write_text("def run(code, a, l):\n    while True:\n        pass\n")
    checks = _candidate_run(tmp_path, endless, "--set", "candidate.timeout=1")
    assert "no HALT within 1 s" in str(checks["oracle-S1[candidate]"]["measured"])
