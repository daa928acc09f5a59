"""The observer task as handed out and as solved, for real: the skeleton (the lab's default tool)
builds, runs and prints its three lines but counts nothing, so every check of t5-observer fails (exit
1); the tutors' model solution passes them all. Both builds are cached in the default VMLAB_HOME like
test_observer.py's (~95 s each the first time)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from tests.integration.procvm.conftest import need
from typer.testing import CliRunner

from vmlab.cli.main import app
from vmlab.labs.catalog import lab_dir
from vmlab.procvm import parse
from vmlab.procvm.runs import execute, require_ok
from vmlab.procvm.toolbuild import ToolBuild, build_tool

pytestmark = pytest.mark.slow
runner = CliRunner()
SKELETON = lab_dir("process-vm") / "skeleton" / "observer"
SOLUTION = lab_dir("process-vm") / "solution" / "observer"
# the task's checks, written down from labs/process-vm/lab.toml (and compared with it below)
OBSERVER_CHECKS = {
    "observer-true-instrs",
    "observer-sort-instrs",
    "observer-extra-instrs",
    "observer-extra-sbs",
    "observer-loop-sbs",
    "observer-translated",
}
BUILD_TOOLS = ("valgrind", "gcc", "make", "autoconf", "automake", "apt-get", "dpkg-source")


@pytest.fixture(scope="module")
def skeleton_build() -> ToolBuild:
    need(*BUILD_TOOLS)
    return build_tool(SKELETON, progress=lambda m: print(f"[skeleton build] {m}"))


def _observer_checks(tmp_path: Path, extra: list[str]) -> tuple[int, dict[str, dict[str, object]]]:
    """`vmlab lab run process-vm --task t5-observer` then `vmlab check --task t5-observer`."""
    report = tmp_path / "r.json"
    run = runner.invoke(app, ["lab", "run", "process-vm", "--task", "t5-observer", "-o", str(report), *extra])
    assert run.exit_code == 0, run.output  # the step ran either way: grading decides
    graded = runner.invoke(app, ["check", str(report), "--task", "t5-observer", "--json"])
    checks = {c["id"]: c for c in json.loads(graded.stdout)["checks"] if c["id"] in OBSERVER_CHECKS}
    return graded.exit_code, checks


def test_the_written_down_checks_are_the_tasks() -> None:
    lab = tomllib.loads((lab_dir("process-vm") / "lab.toml").read_text())
    assert {c["id"] for c in lab["checks"] if c.get("task") == "t5-observer"} == OBSERVER_CHECKS
    assert lab["inputs"]["tool"]["default"] == "skeleton/observer"


def test_the_skeleton_builds_runs_and_counts_nothing(skeleton_build: ToolBuild, tmp_path: Path) -> None:
    ob = require_ok(
        execute("observer", ["/bin/true"], scratch=tmp_path, valgrind=str(skeleton_build.launcher))
    )
    counts = parse.parse_observer(ob.log)
    assert counts.translated > 1000  # the callback runs (and counts translations, the given part)
    assert (counts.sbs_entered, counts.guest_instrs) == (0, 0)  # but no helper call is inserted


def test_the_untouched_skeleton_fails_every_observer_check(skeleton_build: ToolBuild, tmp_path: Path) -> None:
    code, checks = _observer_checks(tmp_path, [])
    assert code == 1
    assert set(checks) == OBSERVER_CHECKS
    assert {c["outcome"] for c in checks.values()} == {"fail"}, checks


def test_the_model_solution_passes_every_observer_check(tmp_path: Path) -> None:
    need(*BUILD_TOOLS)
    code, checks = _observer_checks(tmp_path, ["--input", f"tool={SOLUTION}"])
    assert code == 0, checks
    assert set(checks) == OBSERVER_CHECKS
    assert {c["outcome"] for c in checks.values()} == {"pass"}, checks
