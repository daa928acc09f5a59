"""The shared code over a runtime it has never heard of: the fake in-memory runtime (fake_runtime.py)
runs `up`, `exec`, `ssh`, `ls`, `down`, compare and a lab step through public APIs only, once registered
by the test and once installed from a temporary folder through the `vmlab.runtimes` entry point group
(no shared file edited).

The registry holds the test's runtime alone here: `ls` and `down --all` over the real runtimes would
reach this host's daemons and other people's instances.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.unit.backends import fake_runtime
from typer.testing import CliRunner

from vmlab.cli.main import app

MIB = 1 << 20


# A runtime as someone outside vmlab would ship it: a module and an entry point in its dist-info.
PLUGIN = """
from tests.unit.backends.fake_runtime import FakeBackend
from vmlab.runtime_registry import Health, RuntimeInfo


class TmpBackend(FakeBackend):
    runtime = "tmprt"


def open_runtime(ctx):
    return TmpBackend()


def probe():
    return Health("ok", "tmprt answers")


RUNTIME = RuntimeInfo("tmprt", "container", "tmprt", "from a folder", probe="tmprt:probe", images=False)
"""
ENTRY_POINTS = "[vmlab.runtimes]\ntmprt = tmprt:RUNTIME\nbroken = no_such_module:RUNTIME\n"


def install_plugin(site: Path) -> None:
    """tmprt as an installed distribution: its module and a dist-info naming its entry points."""
    (site / "tmprt-0.1.dist-info").mkdir(parents=True)
    (site / "tmprt-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tmprt\nVersion: 0.1\n"
    )
    (site / "tmprt-0.1.dist-info" / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "tmprt.py").write_text(PLUGIN)


@pytest.fixture(params=["fake", "tmprt"])
def fake_only(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, vmlab_home: Path, tmp_path: Path
) -> Iterator[str]:
    """The name of a runtime the registry holds alone: the test's fake, or tmprt from a folder."""
    from vmlab.runtime_registry import load_plugins, unregister

    monkeypatch.setattr("vmlab.runtime_registry.RUNTIMES", {})
    if request.param == "fake":
        with fake_runtime.registered():
            yield "fake"
    else:
        install_plugin(tmp_path / "site")
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        try:
            assert list(load_plugins(force=True)) == ["tmprt"]  # the broken one is skipped
            yield "tmprt"
        finally:
            unregister("tmprt")
    assert not fake_runtime.STORE  # nothing left behind


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_lifecycle_verbs_on_the_fake_runtime(fake_only: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = fake_only
    up = _cli("up", "f1", "--kind", "container", "--runtime", rt, "--run", "r1", "--json")
    assert up.exit_code == 0, up.output
    data = json.loads(up.stdout)
    assert (data["runtime"], data["resource"]) == (rt, "vmlab-r1-f1")
    # the container ladder's stages, in order (readiness.py's table, read by hand)
    assert list(data["ladder_s"]) == ["create_called", "created", "running", "first_exec"]

    said = _cli("exec", "f1", "--", "echo", "hello", "there")
    assert (said.exit_code, said.stdout) == (0, "hello there\n")
    assert _cli("exec", "f1", "--", "exit", "3").exit_code == 3

    execs: list[list[str]] = []

    def fake_execvp(file: str, args: list[str]) -> None:
        execs.append(list(args))

    monkeypatch.setattr(os, "execvp", fake_execvp)
    assert _cli("ssh", "f1").exit_code == 0
    assert execs == [["/bin/echo", "shell into vmlab-r1-f1"]]  # what the instance says, unchanged

    assert _cli("up", "f2", "--kind", "container", "--runtime", rt, "--run", "r1").exit_code == 0
    ls = _cli("ls", "--json")
    assert ls.exit_code == 0, ls.output
    assert sorted((r["name"], r["runtime"], r["kind"]) for r in json.loads(ls.stdout)) == [
        ("f1", rt, "container"),
        ("f2", rt, "container"),
    ]
    down = _cli("down", "f1", "--json")
    assert [r["name"] for r in json.loads(down.stdout)["destroyed"]] == ["f1"]
    assert [r["name"] for r in json.loads(_cli("ls", "--json").stdout)] == ["f2"]
    assert _cli("down", "--all").exit_code == 0
    assert json.loads(_cli("ls", "--json").stdout) == []


def test_a_name_taken_is_one_line_and_creates_nothing(fake_only: str) -> None:
    assert _cli("up", "f1", "--kind", "container", "--runtime", fake_only).exit_code == 0
    again = _cli("up", "f1", "--kind", "container", "--runtime", fake_only)
    assert again.exit_code != 0 and "exists already" in again.output
    assert len(fake_runtime.STORE) == 1
    _cli("down", "--all")


def test_compare_measures_the_fake_container(fake_only: str) -> None:
    from vmlab.systemvm.compare import run_compare
    from vmlab.systemvm.params import CompareParams

    params = CompareParams(
        runs=2, kinds=["container"], runtimes=[fake_only], touch_mib=3, idle_s=0.0, io_lines=10
    )
    out = run_compare(params, run_id="r2", lab="tests")
    start, mem, traps = out["startup"]["container"], out["memory"]["container"], out["traps"]["container"]
    assert start.provenance.backend == fake_only and len(start.samples) == 2  # type: ignore[union-attr]
    assert list(start.stages) == ["create_called", "created", "running", "first_exec"]  # type: ignore[union-attr]
    # memory: the shim's 4 MiB is overhead; after touching 3 MiB the workload is 3 MiB
    assert mem.values["idle_overhead"] == 4 * MIB  # type: ignore[union-attr]
    assert mem.values["after_workload_rss"] == 3 * MIB  # type: ignore[union-attr]
    # traps: one per command a phase runs; idle runs none, io and cpu one each
    counts = traps.counts  # type: ignore[union-attr]
    assert (counts["headline:idle"], counts["headline:io"], counts["headline:cpu"]) == (0, 1, 1)
    assert (counts["before:commands"], counts["after:commands"]) == (0, 2)
    assert "native" in out["startup"]


LAB = """
[lab]
name = "fakelab"
title = "compare on the fake runtime"

[[tasks]]
id = "t1"
title = "compare"
experiments = ["compare"]

[experiments.compare]
runner = "vmlab.systemvm.compare:lab_step"
params = { runs = 1, kinds = ["container"], runtimes = ["RT"], touch_mib = 2, idle_s = 0.0, io_lines = 4 }
requires = ["RT"]

[[checks]]
id = "io-traps"
task = "t1"
kind = "exact"
path = "traps.container.counts.headline:io"
value = 1
"""


def test_a_lab_step_runs_compare_on_the_fake_runtime(
    fake_only: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmlab.labs.pipeline import RunRequest, run_lab

    (tmp_path / "labs" / "fakelab").mkdir(parents=True)
    (tmp_path / "labs" / "fakelab" / "lab.toml").write_text(LAB.replace("RT", fake_only))
    monkeypatch.setenv("VMLAB_LABS", str(tmp_path / "labs"))
    out = tmp_path / "report.json"
    result = run_lab(RunRequest(lab="fakelab", output=out))
    step = result.report.steps["compare"]
    assert step.status == "ok", step
    assert result.report.experiments["memory"]["container"].values["after_workload_rss"] == 2 * MIB  # type: ignore[index,union-attr]
    checked = _cli("check", str(out), "--lab", "fakelab", "--json")
    assert checked.exit_code == 0, checked.output
    outcomes = {c["id"]: c["outcome"] for c in json.loads(checked.stdout)["checks"]}
    assert outcomes["io-traps"] == "pass"


def test_doctor_and_requires_read_the_runtime_from_its_registry_line(fake_only: str) -> None:
    from vmlab.host.doctor import runtime_rows
    from vmlab.host.requirements import unmet

    (row,) = runtime_rows()
    assert (row.name, row.status) == (fake_only, "ok")
    assert unmet([fake_only]) == []


def test_a_fresh_process_finds_a_runtime_installed_in_a_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    install_plugin(tmp_path / "site")
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(root), *sys.path])}
    code = "from vmlab.backends import runtime_names; print(runtime_names('container'))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "['docker', 'podman', 'tmprt']"  # the built-in two, then the plug-in
    assert "runtime plug-in broken skipped: No module named 'no_such_module'" in p.stderr
