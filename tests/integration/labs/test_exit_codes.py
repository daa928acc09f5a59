"""The pipeline's exit codes, asserted for every shipped lab.

0 comes from each lab's own end-to-end test (a real run graded); here: 1 (a required check failed), 2
(bad input), 3 (not gradable: steps skipped), 130 (Ctrl-C during a real run, with a valid partial report
and nothing left behind).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from tests.helpers import interrupt_when
from typer.testing import CliRunner

from vmlab.cli.main import app
from vmlab.labs.catalog import lab_names, load_lab
from vmlab.report.model import HostInfo, Report, RunInfo, StepRecord

LABS = lab_names()
runner = CliRunner()


def _report(lab: str, status: Literal["ok", "skipped"]) -> Report:
    """A report for `lab` whose every step has `status` and which holds no experiment (run with the
    anonymous variant's parameters, as `vmlab lab run` without a student id does)."""
    from vmlab.report.model import VariantRecord
    from vmlab.spec.variants import derive, step_settings, term_of

    spec = load_lab(lab)
    values = derive(spec, None)
    fixed = step_settings(spec, values)
    variant = VariantRecord(term=term_of(spec), values=values) if spec.variants else None
    return Report(
        vmlab_version="0",
        lab=lab,
        run_id="r",
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        host=HostInfo(
            hostname="h",
            kernel="6.1",
            os="Debian",
            arch="x86_64",
            cpu_model="c",
            cpu_count=2,
            memory_bytes=1,
            python="3.11",
            hw_virt=False,
        ),
        run=RunInfo(lab_sha256="", tasks=[t.id for t in spec.tasks], variant=variant),
        steps={
            s: StepRecord(status=status, message="requirement unmet", params=fixed.get(s, {}))
            for s in spec.experiments
        },
    )


def test_all_shipped_labs_are_covered() -> None:
    assert {"warmup", "system-vm", "kvm-api", "isa-emulation"} <= set(LABS)


@pytest.mark.parametrize("lab", LABS)
def test_check_exits_3_when_steps_were_skipped(lab: str, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(_report(lab, "skipped").model_dump_json())
    result = runner.invoke(app, ["check", str(path), "--json"])
    assert result.exit_code == 3, result.output
    checks = json.loads(result.stdout)["checks"]
    assert any(c["outcome"] == "skipped" and c["required"] for c in checks)
    # nothing measured fails: only questions left unanswered (no answers input) may, worth 0 points
    assert not any(c["outcome"] == "fail" and not c["kind"].startswith("question") for c in checks)


@pytest.mark.parametrize("lab", LABS)
def test_check_exits_1_when_steps_ran_but_measured_nothing(lab: str, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(_report(lab, "ok").model_dump_json())
    result = runner.invoke(app, ["check", str(path), "--json"])
    assert result.exit_code == 1, result.output
    failed = [c for c in json.loads(result.stdout)["checks"] if c["outcome"] == "fail"]
    assert failed and all("not in the report" in c["message"] or c["measured"] is None for c in failed)


@pytest.mark.parametrize("lab", LABS)
def test_bad_input_exits_2_before_anything_runs(lab: str, vmlab_home: Path) -> None:
    result = runner.invoke(app, ["lab", "run", lab, "--set", "no-such-step.runs=1"])
    assert result.exit_code == 2 and "has no step 'no-such-step'" in result.output
    assert not (vmlab_home / "runs").exists() or not any((vmlab_home / "runs").iterdir())
    result = runner.invoke(app, ["check", "/nonexistent/report.json", "--lab", lab])
    assert result.exit_code == 2


# Labs whose first step would end before a signal lands get a longer first step.
LONGER = {"warmup": ["--set", "true.runs=10000"], "kvm-api": ["--set", "programs.repeats=500"]}


def _a_step_started(report: Path) -> bool:
    try:
        steps = json.loads(report.read_text())["steps"]
    except (OSError, json.JSONDecodeError, KeyError):
        return False
    return any(s.get("started_at") for s in steps.values())


def _owned_by(run_id: str) -> list[str]:
    """Domains and containers whose names carry the run id (vmlab names them vmlab-<run>-<name>)."""
    found: list[str] = []
    virsh = subprocess.run(["virsh", "list", "--all", "--name"], capture_output=True, text=True, check=False)
    found += [n for n in virsh.stdout.split() if run_id in n]
    docker = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=False
    )
    found += [n for n in docker.stdout.split() if run_id in n]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS)
def test_ctrl_c_exits_130_with_a_valid_partial_report_and_nothing_left(lab: str, tmp_path: Path) -> None:
    from vmlab.report.io import load_report

    out = tmp_path / "r.json"
    code = "import sys; from vmlab.cli.main import main; sys.argv = ['vmlab'] + sys.argv[1:]; main()"
    env = {**os.environ, "VMLAB_HOME": os.environ.get("VMLAB_TEST_HOME", "/var/tmp/vmlab-test")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "lab", "run", lab, "-o", str(out), *LONGER.get(lab, [])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # interrupt once a step has been running for a moment
    got = interrupt_when(proc, lambda: _a_step_started(out), what="a step starting", timeout=120, settle=0.3)
    assert got.sent, f"the run ended before it could be interrupted: {got.stderr}"
    assert got.returncode == 130, got.stderr
    report = load_report(out)
    assert report.run.status == "interrupted"
    statuses = [s.status for s in report.steps.values()]
    assert "interrupted" in statuses and "not_run" not in statuses[: statuses.index("interrupted")]
    assert _owned_by(report.run_id) == []
