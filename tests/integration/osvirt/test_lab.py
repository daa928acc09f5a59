"""`vmlab lab run os-virt` end to end as root: the model solution passes every check of t1..t7, the
skeleton fails exactly those tasks, and the cost task measures box, runc, Docker and gVisor in one run.

Expected outcomes come from the task sheet, not from a previous run: the skeleton runs the probes on
the host itself, so its shell is not PID 1, it sees the host's root, interfaces and capabilities, and
nothing limits its memory or forks. Variant values come from `vmlab lab variant` (an independent path).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from tests.helpers import failed_verdicts
from tests.integration.osvirt.conftest import SKELETON, SOLUTION
from typer.testing import CliRunner

from vmlab.cli.main import app
from vmlab.osvirt.box import leftovers

pytestmark = pytest.mark.slow
runner = CliRunner()
ISOLATION_TASKS = ["t1-pid-uts", "t2-mount", "t3-user", "t4-net", "t5-cgroups", "t6-seccomp", "t7-caps"]


def _run(tmp_path: Path, box: Path, tasks: list[str], *sets: str) -> tuple[dict, dict, Path]:  # type: ignore[type-arg]
    report = tmp_path / box.parent.name / "report.json"
    args = ["lab", "run", "os-virt", "--student", "s1", "-o", str(report), "--input", f"box={box}"]
    for t in tasks:
        args += ["--task", t]
    for s in sets:
        args += ["--set", s]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    c = runner.invoke(app, ["check", str(report), "--json"])
    return json.loads(report.read_text()), json.loads(c.stdout), report


@pytest.fixture(autouse=True)
def _root(rootfs: Path) -> None:
    """Through the rootfs fixture: root and the tiny image, else skipped with the reason."""


def test_solution_passes_and_skeleton_fails_each_task(tmp_path: Path) -> None:
    v = runner.invoke(app, ["lab", "variant", "os-virt", "--student", "s1", "--json"])
    raw = json.loads(v.stdout)
    values = raw.get("values", raw)
    host_n, pids_max = int(values["host_n"]), int(values["pids_max"])

    report, verdict, _ = _run(tmp_path, SOLUTION, ISOLATION_TASKS)
    checks = [c for c in verdict["checks"] if c.get("task") in ISOLATION_TASKS and c["kind"] != "question"]
    assert checks and failed_verdicts(checks) == []
    box = report["experiments"]["isolation"]["box"]
    assert box["values"]["hostname"] == f"box-{host_n}"
    forks = report["experiments"]["limits"]["forks"]["counts"]
    # pids.max counts the box's own processes too: the supervisor's child and PID 1 (2 here)
    assert forks["started"] == pids_max - 2
    assert report["experiments"]["limits"]["memory"]["counts"]["alloc_status"] == 137
    assert report["experiments"]["limits"]["cpu"]["counts"]["wall_cs"] >= 200  # busy_s = 2.0 s
    if shutil.which("docker"):
        # Docker keeps the host's user namespace, has no seccomp rule against mkdir and mounts more
        assert (
            report["experiments"]["isolation"]["compare"]["values"]["differ_docker"] == "mounts,userns,mkdir"
        )

    _, verdict, _ = _run(tmp_path, SKELETON, ISOLATION_TASKS, "isolation.compare=[]")
    by_task = {
        t: [c for c in verdict["checks"] if c.get("task") == t and c["kind"] != "question"]
        for t in ISOLATION_TASKS
    }
    for task, checks in by_task.items():
        assert failed_verdicts(checks), f"the skeleton passed every check of {task}"
    assert [p for p in leftovers() if p.name.startswith(f"vmlab-osvirt-{os.getpid()}-")] == []


def test_cost_compares_box_runc_docker_runsc(tmp_path: Path) -> None:
    report, verdict, path = _run(tmp_path, SOLUTION, ["t8-cost"], "cost.repeats=2", "cost.ns_repeats=3")
    exps = report["experiments"]
    assert set(exps["ns-cost"]) == {"fork", "user", "pid", "uts", "ipc", "mnt", "net", "cgroup"}
    assert len(exps["ns-cost"]["net"]["samples"]) == 3
    box = exps["cost"]["box"]
    assert len(box["samples"]) == 2 and {"unshare", "pivot_root", "seccomp"} <= set(box["stages"])
    expected = {"python", "box"} | (
        {"runc"} if shutil.which("runc") or Path("/usr/sbin/runc").exists() else set()
    )
    if shutil.which("docker"):
        expected |= {"docker", "runsc"}
    assert expected <= set(exps["cost"])
    assert (
        failed_verdicts(
            [c for c in verdict["checks"] if c.get("task") == "t8-cost" and c["kind"] != "question"]
        )
        == []
    )
    t = runner.invoke(app, ["os-virt", "table", str(path), "--json"])
    assert t.exit_code == 0, t.output
    created = {r["name"] for r in json.loads(t.stdout) if r["section"] == "create"}
    assert created == set(exps["cost"])
