"""The observer track for real: Valgrind's source, the student's tool built into a private prefix
(cached in the default VMLAB_HOME, so the ~95 s build happens once per machine and tool version), and
its counts against lackey's -- the hand-counted loop first, then lackey as the oracle. The tool is the
tutors' model solution (labs/process-vm/solution/observer), given explicitly: the lab's default is the
skeleton, which counts nothing (test_skeleton.py)."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from tests.integration.procvm.conftest import need
from typer.testing import CliRunner

from vmlab.labs.catalog import lab_dir
from vmlab.labs.step import StepContext
from vmlab.procvm import lab, parse
from vmlab.procvm.cli import register
from vmlab.procvm.runs import execute, require_ok
from vmlab.procvm.toolbuild import ToolBuild, build_tool

pytestmark = pytest.mark.slow
runner = CliRunner()
SOLUTION = lab_dir("process-vm") / "solution" / "observer"


@pytest.fixture(scope="module")
def observer_build() -> ToolBuild:
    need("valgrind", "gcc", "make", "autoconf", "automake", "apt-get", "dpkg-source")
    return build_tool(SOLUTION, progress=lambda m: print(f"[observer build] {m}"))


def test_observer_on_the_hand_written_loop(
    observer_build: ToolBuild, asm_program: Callable[[str], Path], tmp_path: Path
) -> None:
    run = require_ok(
        execute(
            "observer", [str(asm_program("x86_64"))], scratch=tmp_path, valgrind=str(observer_build.launcher)
        )
    )
    o = parse.parse_observer(run.log)
    # 3 translations (entry, loop, exit); 1 + 500 + 1 superblock entries (VEX unrolls the loop twice);
    # one helper per entry adds the superblock's static count: 5 + 500 * 8 + 3 = 4008, the hand count
    # 4004 plus the 4 instructions after the side exit of the last (odd) iteration.
    assert (o.translated, o.sbs_entered, o.guest_instrs) == (3, 502, 4008)


def test_observer_against_lackey_on_true(observer_build: ToolBuild, tmp_path: Path) -> None:
    vg = str(observer_build.launcher)
    ob = require_ok(execute("observer", ["/bin/true"], scratch=tmp_path, valgrind=vg))
    lk = require_ok(execute("lackey", ["/bin/true"], scratch=tmp_path, valgrind=vg))
    o, c = parse.parse_observer(ob.log), parse.parse_lackey(lk.log)
    assert o.sbs_entered == c.sbs_entered
    assert c.guest_instrs <= o.guest_instrs <= c.guest_instrs * 1.02


def test_observer_step_with_an_unseen_workload(observer_build: ToolBuild, tmp_path: Path) -> None:
    hidden = tmp_path / "hidden.c"
    hidden.write_text(
        "#include <stdio.h>\n"
        "int main(void) { unsigned h = 5381; for (int i = 0; i < 5000; i++) h = h * 33 + (i % 7 ? i : i / 3);"
        ' printf("%u\\n", h); return 0; }\n'
    )
    ctx = StepContext(
        run_id="test",
        lab="process-vm",
        step_id="observer",
        scratch=tmp_path / "scratch",
        artifacts_dir=tmp_path / "artifacts",
        report_dir=tmp_path,
        lab_dir=lab_dir("process-vm"),
        inputs={"tool": SOLUTION, "workload": hidden},
        progress=lambda _m: None,
    )
    group = lab.observer(lab.ObserverParams(workloads=["loop", "true"]), ctx)["observer"]
    assert isinstance(group, dict) and set(group) == {"loop", "true", "extra"}
    for name, exp in group.items():
        c = exp.counts
        assert c["sbs_entered"] == c["lackey_sbs_entered"], name
        assert c["lackey_guest_instrs"] <= c["guest_instrs"] <= c["lackey_guest_instrs"] * 1.02, name
        assert exp.values["same_output"] is True
    assert {a.name for a in ctx.artifacts} >= {"extra.observer.log", "extra.lackey.log"}


def test_tool_cli(observer_build: ToolBuild) -> None:
    app = typer.Typer()
    register(app)
    r = runner.invoke(app, ["procvm", "tool", "build", "--json", "--tool-dir", str(SOLUTION)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["cached"] is True
    r = runner.invoke(
        app, ["procvm", "tool", "run", "--json", "--tool-dir", str(SOLUTION), "--", "/bin/true"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["observer"]["sbs_entered"] == data["lackey"]["sbs_entered"]
    r = runner.invoke(app, ["procvm", "tool", "run", "--tool-dir", str(SOLUTION), "--", "/bin/true"])
    assert r.exit_code == 0 and "guest instrs" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
