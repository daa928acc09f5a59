"""The warm-up lab end to end through the CLI: real processes, real report, real grading."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from tests.helpers import failed_verdicts
from typer.testing import CliRunner

from vmlab.cli.main import app

runner = CliRunner()


@pytest.fixture
def warmup_report(tmp_path: Path, vmlab_home: Path) -> Path:
    path = tmp_path / "r.json"
    result = runner.invoke(app, ["lab", "run", "warmup", "-o", str(path), "--set", "true.runs=5"])
    assert result.exit_code == 0, result.output
    return path


def test_run_then_check_passes(warmup_report: Path, tmp_path: Path) -> None:
    data = json.loads(warmup_report.read_text())
    assert data["lab"] == "warmup" and data["experiments"]["true"]["counts"]["runs"] == 5
    assert len(data["experiments"]["python"]["samples"]) == 20
    junit = tmp_path / "junit.xml"
    result = runner.invoke(app, ["check", str(warmup_report), "--junit", str(junit), "--json"])
    # true-runs expects 20 starts, the fixture ran 5: exactly that check fails
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    failed = [c["id"] for c in out["checks"] if not c["passed"]]
    assert failed == ["true-runs"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (
        suite is not None and suite.get("failures") == "1" and suite.get("tests") == str(len(out["checks"]))
    )


def test_default_run_passes_every_check(tmp_path: Path, vmlab_home: Path) -> None:
    path = tmp_path / "r.json"
    assert runner.invoke(app, ["lab", "run", "warmup", "-o", str(path)]).exit_code == 0
    result = runner.invoke(app, ["check", str(path), "--json"])
    checks = json.loads(result.stdout)["checks"]
    assert len(checks) == 6 and failed_verdicts(checks) == []
    assert {c["id"] for c in checks if c["timing"]} == {"true-fast", "python-slower", "order"}
    assert result.exit_code == (0 if all(c["passed"] for c in checks) else 1)


def test_hand_edited_report_fails_with_the_row_shown(warmup_report: Path) -> None:
    data = json.loads(warmup_report.read_text())
    data["experiments"]["uname"]["text"] = "Darwin\n"
    warmup_report.write_text(json.dumps(data))
    result = runner.invoke(app, ["check", str(warmup_report)])
    assert result.exit_code == 1
    row = next(line for line in result.stdout.splitlines() if "kernel-name" in line)
    assert "FAIL" in row


def test_truncated_report_exits_2_with_one_line(warmup_report: Path) -> None:
    text = warmup_report.read_text()
    warmup_report.write_text(text[: len(text) // 2])
    result = runner.invoke(app, ["check", str(warmup_report)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is not valid JSON" in lines[0]


def test_report_show_and_json(warmup_report: Path) -> None:
    shown = runner.invoke(app, ["report", "show", str(warmup_report)])
    assert shown.exit_code == 0 and "true" in shown.stdout and "python" in shown.stdout
    again = runner.invoke(app, ["report", "show", "--json", str(warmup_report)])
    assert json.loads(again.stdout) == json.loads(warmup_report.read_text())


def test_report_schema_prints_json_schema() -> None:
    result = runner.invoke(app, ["report", "schema"])
    schema = json.loads(result.stdout)
    assert schema["title"] == "vmlab report" and "experiments" in schema["properties"]


def test_lab_ls_and_show() -> None:
    listed = runner.invoke(app, ["lab", "ls", "--json"])
    assert "warmup" in [lab["name"] for lab in json.loads(listed.stdout)]
    shown = runner.invoke(app, ["lab", "show", "warmup"])
    assert shown.exit_code == 0 and "python-slower" in shown.stdout


def test_unknown_lab_is_exit_2() -> None:
    result = runner.invoke(app, ["lab", "run", "nope"])
    assert result.exit_code == 2 and "no lab named 'nope'" in result.stderr


def test_bad_set_option_is_exit_2() -> None:
    result = runner.invoke(app, ["lab", "run", "warmup", "--set", "runs10"])
    assert result.exit_code == 2 and "expected STEP.KEY=VALUE" in result.stderr


def test_help_is_fast_and_imports_no_heavy_library() -> None:
    code = (
        "import sys; from vmlab.cli.main import app; "
        "print(sorted(m for m in ('libvirt', 'docker', 'matplotlib', 'paramiko') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
