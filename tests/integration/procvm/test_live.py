"""Valgrind and qemu-user really run: the parsers on live output, the step runners, the CLI.

Exact counts come from the hand-written loop_*.S (see tests/unit/procvm/data/): 1 + 4 * 1000 + 3 =
4004 guest instructions. Times are computed and reported, never asserted.
"""

import json
import math
import subprocess
from collections.abc import Callable
from pathlib import Path

import typer
from tests.integration.procvm.conftest import need
from typer.testing import CliRunner

from vmlab.labs.catalog import lab_dir
from vmlab.labs.step import StepContext
from vmlab.procvm import lab, parse, qemu_lab
from vmlab.procvm.cli import register
from vmlab.procvm.runs import execute, require_ok
from vmlab.procvm.workloads import build

HAND_INSTRS = 1 + 4 * 1000 + 3
runner = CliRunner()


def ctx(tmp_path: Path, step: str, **inputs: Path) -> StepContext:
    return StepContext(
        run_id="test",
        lab="process-vm",
        step_id=step,
        scratch=tmp_path / "scratch",
        artifacts_dir=tmp_path / "artifacts",
        report_dir=tmp_path,
        lab_dir=lab_dir("process-vm"),
        inputs=dict(inputs),
        progress=lambda _m: None,
    )


def test_lackey_counts_the_hand_written_loop(asm_program: Callable[[str], Path], tmp_path: Path) -> None:
    need("valgrind")
    run = require_ok(execute("lackey", [str(asm_program("x86_64"))], scratch=tmp_path, extra=["--stats=yes"]))
    c, s = parse.parse_lackey(run.log), parse.parse_stats(run.log)
    assert c.guest_instrs == HAND_INSTRS
    assert c.sbs_entered == 1 + 500 + 1  # the loop superblock is unrolled to two iterations
    assert (s.translations, s.guest_insns_translated, s.guest_bytes) == (3, 12, 36)


def test_max_insns_1_makes_one_superblock_per_instruction(
    asm_program: Callable[[str], Path], tmp_path: Path
) -> None:
    need("valgrind")
    extra = ["--vex-guest-max-insns=1", "--stats=yes"]
    run = require_ok(execute("lackey", [str(asm_program("x86_64"))], scratch=tmp_path, extra=extra))
    c, s = parse.parse_lackey(run.log), parse.parse_stats(run.log)
    assert c.guest_instrs == c.sbs_entered == HAND_INSTRS
    assert s.translations == 8  # one per distinct instruction: mov, 4 in the body, 3 in the exit


def test_qemu_logs_of_the_hand_written_loop(asm_program: Callable[[str], Path], tmp_path: Path) -> None:
    log = ("in_asm", "out_asm", "exec", "nochain")
    need("qemu-aarch64", "qemu-x86_64")
    for tool, arch, nbytes in (("qemu-aarch64", "aarch64", 12 * 4), ("qemu-x86_64", "x86_64", 36)):
        run = require_ok(execute(tool, [str(asm_program(arch))], scratch=tmp_path, qemu_log=log, tag=arch))
        q = parse.parse_qemu_log(run.log)
        assert (q.blocks, q.guest_instrs, q.guest_bytes) == (3, 12, nbytes), tool
        assert q.executions == 1 + 999 + 1, tool


def test_counts_step(tmp_path: Path) -> None:
    need("valgrind", "gcc")
    extra = lab_dir("process-vm") / "workloads" / "extra.c"
    params = lab.CountsParams(workloads=["loop", "true"], loop_iterations=100_000, extra=True)
    c = ctx(tmp_path, "counts", workload=extra)
    group = lab.counts(params, c)["counts"]
    assert isinstance(group, dict) and set(group) == {"loop", "true", "extra"}
    for name, exp in group.items():
        assert exp.counts["sbs_entered"] >= exp.counts["sbs_completed"], name
        assert 2 <= exp.values["instrs_per_sb"] <= 20, name  # type: ignore[operator]
        assert exp.counts["none_translations"] > 0 and exp.counts["translations"] > 0, name
    # 100,000 iterations of one (unrolled) loop superblock: ~50,000 executions of one translation
    assert group["loop"].counts["sbs_entered"] - group["true"].counts["sbs_entered"] > 50_000 - 10_000
    native = subprocess.run(
        [str(build("loop", lab_dir=lab_dir("process-vm"))), "100000"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert group["loop"].text == native.stdout  # lackey changes how the program runs, not what it does
    assert any(a.name == "loop.lackey.log" for a in c.artifacts)


def test_vex_step(tmp_path: Path) -> None:
    need("valgrind", "gcc")
    group = lab.vex(lab.VexParams(workload="sort", runs=1), ctx(tmp_path, "vex"))["vex"]
    assert isinstance(group, dict)
    d, one, nc = group["default"], group["max-insns-1"], group["no-chase"]
    assert one.counts["translations"] > d.counts["translations"]
    assert 1.0 <= one.counts["guest_instrs"] / one.counts["sbs_entered"] <= 1.01
    assert nc.counts["uncond_chased"] == 0 and nc.counts["cond_chased"] == 0
    assert d.counts["uncond_chased"] > 0


def test_slowdown_step_reports_every_tool(tmp_path: Path) -> None:
    need("valgrind", "gcc")
    params = lab.SlowdownParams(workload="recurse", args=["24"], tools=["none", "lackey"], runs=1)
    group = lab.slowdown(params, ctx(tmp_path, "slowdown"))["slowdown"]
    assert isinstance(group, dict) and set(group) == {"native", "none", "lackey"}
    for exp in group.values():
        assert exp.summary is not None and math.isfinite(exp.summary.median)
        assert exp.text == "recurse n=24 fib=46368 calls=150049\n"  # fib(24); calls = 2 fib(25) - 1


def test_qemu_step_output_equals_native(tmp_path: Path) -> None:
    need("gcc", "aarch64-linux-gnu-gcc", "qemu-aarch64", "qemu-x86_64")
    out = qemu_lab.qemu(qemu_lab.QemuParams(workloads=["loop", "recurse"], runs=1), ctx(tmp_path, "qemu"))
    for tool in ("qemu-x86_64", "qemu-aarch64"):
        group = out[tool]
        assert isinstance(group, dict)
        assert group["recurse"].text == "recurse n=15 fib=610 calls=1973\n"  # fib(15); 2 fib(16) - 1
        for exp in group.values():
            assert exp.values["matches_native"] is True
            assert exp.counts["executions"] > exp.counts["blocks"] > 0
    assert set(out["qemu-time"]) == {"native", "qemu-x86_64", "qemu-aarch64", "qemu-aarch64-nochain"}


def test_cli_run_lackey_json() -> None:
    need("valgrind", "gcc")
    app = typer.Typer()
    register(app)
    r = runner.invoke(app, ["procvm", "run", "recurse", "--tool", "lackey", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["output"] == "recurse n=15 fib=610 calls=1973\n" and data["matches_native"] is True
    assert data["lackey"]["sbs_entered"] >= data["lackey"]["sbs_completed"]
    assert data["stats"]["translations"] > 0


def test_cli_run_qemu_table() -> None:
    need("gcc", "aarch64-linux-gnu-gcc", "qemu-aarch64")
    app = typer.Typer()
    register(app)
    r = runner.invoke(app, ["procvm", "run", "loop", "--tool", "qemu-aarch64", "--repeat", "2"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "loop n=10000 sum=329056267"
    assert "qemu blocks" in r.stdout and "output equals native" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
