"""`vmlab kvm ...` through Typer's CliRunner and the kvm-api lab end to end, on the real /dev/kvm."""

import json
from pathlib import Path

import pytest
from tests.helpers import failed_verdicts
from typer.testing import CliRunner

from vmlab.cli.main import app

pytestmark = pytest.mark.kvm
runner = CliRunner()


def test_run_hello_prints_4_and_exits(kvm_device: str) -> None:
    r = runner.invoke(app, ["kvm", "run", "hello"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "4"
    assert "IO: 2, HLT: 1" in r.stdout


def test_run_json(kvm_device: str) -> None:
    r = runner.invoke(app, ["kvm", "run", "console-hypercall", "--json", "--runs", "3"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["exits"] == {"IO": 1, "HLT": 1}
    assert data["hypercalls"] == 1
    assert len(data["output"]) == 1024
    assert data["timing"]["runs"] == 3 and len(data["timing"]["loop_ns"]) == 3
    assert data["kernel_stats"]["exits"] >= 2


def test_programs_json_lists_every_builtin() -> None:
    r = runner.invoke(app, ["kvm", "programs", "--json"])
    assert r.exit_code == 0
    names = [p["name"] for p in json.loads(r.stdout)]
    assert {"hello", "console-bytewise", "console-hypercall", "cpuid", "mmio", "out", "loop"} <= set(names)


def test_source_prints_assembler() -> None:
    r = runner.invoke(app, ["kvm", "source", "hello"])
    assert r.exit_code == 0
    assert "out dx, al" in r.stdout


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["kvm", "run", "nope"], 2, "no built-in program 'nope'"),
        (["kvm", "run", "hello", "--device", "/nonexistent/kvm"], 3, "does not exist"),
        (["kvm", "run", "triple-fault"], 4, "triple fault"),
        (["kvm", "run", "runaway", "--timeout", "0.2"], 4, "still running after 0.2 s"),
        (["kvm", "run", "out", "--count", "0"], 2, "out of range"),
    ],
)
def test_errors_are_one_line_with_exit_code(
    kvm_device: str, args: list[str], code: int, fragment: str
) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == code, r.output
    assert fragment in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""


def test_invalid_program_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.asm"
    bad.write_text("mov ax, 1\nfrobnicate\n")
    r = runner.invoke(app, ["kvm", "run", str(bad)])
    assert r.exit_code == 2
    assert "line 2" in r.stderr and "frobnicate" in r.stderr


@pytest.mark.slow
def test_lab_run_and_check_pass(kvm_device: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "home"))
    report = tmp_path / "r.json"
    solution = Path(__file__).parents[2] / "data" / "kvm-api" / "line_hypercall.asm"
    r = runner.invoke(app, ["lab", "run", "kvm-api", "-o", str(report), "--input", f"program={solution}"])
    assert r.exit_code == 0, r.output
    data = json.loads(report.read_text())
    assert data["inputs"]["program"]["name"] == "line_hypercall.asm"
    # one hypercall and the hlt (the VMM reads the whole line from guest memory in one exit)
    assert data["experiments"]["own-program"]["counts"]["user_exits"] == 2
    progs = data["experiments"]["programs"]
    assert progs["hello"]["counts"]["IO"] == 2 and progs["hello"]["counts"]["HLT"] == 1
    assert progs["console-bytewise"]["counts"]["IO"] == 1024
    assert progs["console-hypercall"]["counts"]["IO"] == 1
    c = runner.invoke(app, ["check", str(report), "--json"])
    assert failed_verdicts(json.loads(c.stdout)["checks"]) == [], c.output


def test_own_task_with_the_untouched_skeleton_fails_the_exit_budget(
    kvm_device: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "home"))
    report = tmp_path / "r.json"
    v = runner.invoke(app, ["lab", "variant", "kvm-api", "--student", "s1", "--json"])
    assert v.exit_code == 0, v.output
    raw = json.loads(v.stdout)
    line = str(raw.get("values", raw)["own_line"])
    r = runner.invoke(app, ["lab", "run", "kvm-api", "--student", "s1", "--task", "own", "-o", str(report)])
    assert r.exit_code == 0, r.output
    c = runner.invoke(app, ["check", str(report), "--task", "own", "--json"])
    assert c.exit_code == 1, c.output
    checks = {x["id"]: x for x in json.loads(c.stdout)["checks"]}
    assert checks["own-output"]["outcome"] == "pass"  # the skeleton prints the line correctly...
    # ...one OUT per byte of the student's variant line (`vmlab lab variant`), plus the hlt
    assert checks["own-exits"]["outcome"] == "fail"
    assert checks["own-exits"]["measured"] == len(line.encode()) + 1


def test_own_task_with_a_hidden_line(
    kvm_device: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line comes from the VMM, so another line (a tutor's re-run) needs no change to the program."""
    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "home"))
    report = tmp_path / "r.json"
    solution = Path(__file__).parents[2] / "data" / "kvm-api" / "line_hypercall.asm"
    line = "a line the student never saw, 40 bytes.\n"
    args = ["lab", "run", "kvm-api", "--task", "own", "-o", str(report), "--input", f"program={solution}"]
    r = runner.invoke(app, [*args, "--set", f"own-program.line={json.dumps(line)}"])
    assert r.exit_code == 0, r.output
    own = json.loads(report.read_text())["experiments"]["own-program"]
    assert own["values"]["output_ok"] is True and own["values"]["line_bytes"] == 40
    assert own["counts"]["user_exits"] == 2
