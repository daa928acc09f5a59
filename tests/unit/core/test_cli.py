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
    # questions left unanswered score 0 without failing the verdict; of the checks, exactly one fails
    failed = [
        c["id"] for c in out["checks"] if c["outcome"] != "pass" and not c["kind"].startswith("question")
    ]
    assert failed == ["true-runs"]
    assert out["grade"]["exit_code"] == 1 and out["grade"]["passed"] is False
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (
        suite is not None and suite.get("failures") == "1" and suite.get("tests") == str(len(out["checks"]))
    )


def test_default_run_passes_every_check(tmp_path: Path, vmlab_home: Path) -> None:
    path = tmp_path / "r.json"
    assert runner.invoke(app, ["lab", "run", "warmup", "-o", str(path)]).exit_code == 0
    result = runner.invoke(app, ["check", str(path), "--json"])
    checks = [c for c in json.loads(result.stdout)["checks"] if not c["kind"].startswith("question")]
    # the six checks of lab.toml plus the integrity check every report gets (its questions aside)
    assert len(checks) == 7 and failed_verdicts(checks) == []
    assert {c["id"] for c in checks if c["timing"]} == {"true-fast", "python-slower", "order"}
    assert result.exit_code == (0 if all(c["outcome"] == "pass" for c in checks) else 1)
    # timing checks aside, the verdict does not depend on this machine's speed
    advisory = runner.invoke(app, ["check", str(path), "--timing", "advisory"])
    assert advisory.exit_code == 0, advisory.output


# What someone writes by hand to pass the warm-up without running it: plausible numbers, one sample each.
HAND_WRITTEN = """{"schema_version": 1, "vmlab_version": "0.1.0", "lab": "warmup", "run_id": "x",
 "created_at": "2026-11-01T10:00:00Z",
 "host": {"hostname": "h", "kernel": "6.1", "os": "Debian", "arch": "x86_64", "cpu_model": "c",
          "cpu_count": 2, "memory_bytes": 1, "python": "3.11", "hw_virt": false},
 "experiments": {
  "true": {"unit": "s", "samples": [0.001],
           "summary": {"n": 1, "median": 0.001, "min": 0.001, "max": 0.001}, "counts": {"runs": 20}},
  "python": {"unit": "s", "samples": [0.02],
             "summary": {"n": 1, "median": 0.02, "min": 0.02, "max": 0.02}, "counts": {"runs": 20}},
  "uname": {"unit": "s", "samples": [0.001],
            "summary": {"n": 1, "median": 0.001, "min": 0.001, "max": 0.001}, "counts": {"runs": 3},
            "text": "Linux\\n"}}}
"""


def test_hand_written_report_fails_integrity(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(HAND_WRITTEN)
    result = runner.invoke(app, ["check", str(path), "--json"])
    assert result.exit_code == 1, result.output
    integrity = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "integrity")
    # 20 runs claimed, 1 sample kept: the runs count is re-derived from the samples and disagrees
    assert integrity["outcome"] == "fail" and "true.counts.runs" in integrity["message"]


def test_edited_median_fails(warmup_report: Path) -> None:
    data = json.loads(warmup_report.read_text())
    data["experiments"]["python"]["summary"]["median"] = 99.0
    warmup_report.write_text(json.dumps(data))
    result = runner.invoke(app, ["check", str(warmup_report), "--json"])
    assert result.exit_code == 1
    integrity = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "integrity")
    assert "summary does not match samples" in integrity["message"] and "python" in integrity["message"]


def test_v1_report_from_the_first_release_still_grades() -> None:
    """A report written by vmlab 0.1.0 (schema 1), committed as it was: upgraded on load, graded."""
    v1 = Path(__file__).parents[2] / "data" / "reports" / "warmup-v1.json"
    assert json.loads(v1.read_text())["schema_version"] == 1
    result = runner.invoke(app, ["check", str(v1), "--json", "--timing", "advisory"])
    assert result.exit_code == 0, result.output
    checks = json.loads(result.stdout)["checks"]
    assert all(
        c["outcome"] == "pass" for c in checks if not c["timing"] and not c["kind"].startswith("question")
    )


def test_report_from_a_newer_vmlab_is_refused_clearly(warmup_report: Path) -> None:
    data = json.loads(warmup_report.read_text())
    data["schema_version"] = 9
    warmup_report.write_text(json.dumps(data))
    result = runner.invoke(app, ["check", str(warmup_report)])
    assert result.exit_code == 2 and "newer than this vmlab reads" in result.stderr


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


def test_bad_regex_in_lab_toml_is_exit_2_naming_the_check(
    warmup_report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labs = tmp_path / "labs"
    (labs / "warmup").mkdir(parents=True)
    original = (Path(__file__).parents[3] / "labs" / "warmup" / "lab.toml").read_text()
    broken = original.replace('pattern = "^Linux"', 'pattern = "^(Linux"')
    assert broken != original
    (labs / "warmup" / "lab.toml").write_text(broken)
    monkeypatch.setenv("VMLAB_LABS", str(labs))
    result = runner.invoke(app, ["check", str(warmup_report)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "kernel-name" in lines[0] and "regular expression" in lines[0]
