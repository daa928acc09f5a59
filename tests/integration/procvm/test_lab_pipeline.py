"""The process-VM lab as a student runs it: `vmlab lab run process-vm`, then `vmlab check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers import failed_verdicts
from typer.testing import CliRunner

from vmlab.cli.main import app

pytestmark = pytest.mark.slow


SOLUTION = Path(__file__).resolve().parents[3] / "labs" / "process-vm" / "solution" / "observer"


def test_lab_run_and_check(tmp_path: Path) -> None:
    # the tutors' model observer, given as the student's tool (the default, the skeleton, fails t5)
    report = tmp_path / "r.json"
    argv = ["lab", "run", "process-vm", "-o", str(report), "--student", "s7", "--input", f"tool={SOLUTION}"]
    run = CliRunner().invoke(app, argv)
    assert run.exit_code == 0, run.output
    data = json.loads(report.read_text())
    assert data["inputs"]["tool"]["kind"] == "dir" and data["inputs"]["tool"]["files"] >= 1
    assert data["host"]["versions"].get("valgrind"), data["host"]["versions"]
    # every step kept its logs as artifacts beside the report, listed with their hashes
    assert data["artifacts"] and all((tmp_path / a["path"]).is_file() for a in data["artifacts"])
    graded = CliRunner().invoke(app, ["check", str(report), "--json"])
    checks = json.loads(graded.stdout)["checks"]
    assert failed_verdicts(checks) == [], graded.output
    assert graded.exit_code in (0, 1)  # 1 only through a timing check on a busy machine
