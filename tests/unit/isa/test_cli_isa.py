"""`vmlab isa gen|run|bench` through the real CLI: exit codes, JSON on stdout, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vmlab.cli.main import app

runner = CliRunner()


def test_gen_then_run_a_file(tmp_path: Path) -> None:
    prog = tmp_path / "p.bin"
    result = runner.invoke(
        app,
        ["isa", "gen", "--size", "10000", "--seed", "1", "--probs", "1/9/1/5/5", "-o", str(prog), "--json"],
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["a"], info["l"]) == (6, 7) and prog.stat().st_size == 10000
    result = runner.invoke(
        app, ["isa", "run", str(prog), "--a", "6", "--l", "7", "--engine", "bt-chain", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["a"], out["executed"]) == (95, 719_821)  # the file is scenario 3
    assert out["stats"]["chainings"] > 0


def test_gen_without_file_prints_the_digits() -> None:
    result = runner.invoke(app, ["isa", "gen", "--size", "10", "--probs", "0/1/0/0/0"])
    assert result.exit_code == 0 and result.stdout.strip() == "2222222220"


def test_run_scenario_compares_with_the_oracle() -> None:
    result = runner.invoke(app, ["isa", "run", "--scenario", "2", "--engine", "super", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["oracle"] == {"a": -1, "executed": 10_000, "matches": True}


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["isa", "gen", "--size", "7"], "size 7 is too small"),
        (["isa", "gen", "--probs", "0/0/0/0/0"], "all zero"),
        (["isa", "gen", "--probs", "1/-2/1/5/5"], "negative"),
        (["isa", "gen", "--probs", "1/9/1"], "five numbers"),
        (["isa", "run", "--scenario", "1", "--engine", "turbo"], "unknown engine 'turbo'"),
        (["isa", "run", "--scenario", "9"], "no scenario 9"),
        (["isa", "run"], "either a program FILE or --scenario"),
        (["isa", "bench", "--engines", "nope"], "unknown engine 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], words: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], result.stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (bytes([2, 2, 7, 0]), "byte 7 at offset 2 is not an opcode"),
        (bytes([2, 5, 2, 2, 2, 2, 2, 0]), "BACK7 at offset 1 would jump before the start"),
        (bytes([2, 2, 2]), "not HALT"),
        (b"", "is empty"),
    ],
)
def test_bad_program_files(tmp_path: Path, content: bytes, words: str) -> None:
    prog = tmp_path / "bad.bin"
    prog.write_bytes(content)
    result = runner.invoke(app, ["isa", "run", str(prog)])
    assert result.exit_code == 2 and words in result.stderr, result.stderr


def test_missing_program_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["isa", "run", str(tmp_path / "nope.bin")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_bench_writes_report_and_plot(tmp_path: Path, vmlab_home: Path) -> None:
    report, plot = tmp_path / "bench.json", tmp_path / "ns.png"
    result = runner.invoke(
        app,
        [
            "isa",
            "bench",
            "--scenarios",
            "1,3",
            "--engines",
            "switch,bt-staged",
            "--runs",
            "2",
            "-o",
            str(report),
            "--plot",
            str(plot),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert json.loads(report.read_text())["run_id"] == data["run_id"]
    exps = data["experiments"]
    assert set(exps) == {"switch", "bt-staged"} and set(exps["switch"]) == {"S1", "S3"}
    s3 = exps["bt-staged"]["S3"]
    assert s3["values"]["outcome"] == "A=95 instructions=719821" and len(s3["samples"]) == 2
    assert s3["counts"]["blocks_translated"] > 0 and "translate" in s3["stages"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_student_engine_through_isa_run(tmp_path: Path) -> None:
    student = tmp_path / "mine.py"
    student.write_text("def run(code, a, l):\n    return a, l, 0\n")
    result = runner.invoke(app, ["isa", "run", "--scenario", "1", "--engine-module", str(student)])
    assert result.exit_code == 1 and "MISMATCH" in result.stdout
    student.write_text("def walk(code, a, l):\n    return a, l, 0\n")
    result = runner.invoke(app, ["isa", "run", "--scenario", "1", "--engine-module", str(student)])
    assert result.exit_code == 2 and "defines no function run" in result.stderr


def test_endless_program_stops_at_max_seconds(tmp_path: Path) -> None:
    # SETL inside the loop body: L is reset from a growing A on every pass, so BACK7 keeps jumping
    prog = tmp_path / "endless.bin"
    prog.write_bytes(bytes([2, 2, 2, 2, 2, 4, 5, 0]))
    r = runner.invoke(app, ["isa", "run", str(prog), "--a", "1", "--timeout", "1"])
    assert r.exit_code == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no HALT within 1 s" in lines[0]


def test_gen_writes_the_initial_state_and_run_uses_it(tmp_path: Path) -> None:
    # hidden-parameter style: seed 7 draws A=4 L=5; the oracle is the reference interpreter's
    from vmlab.isa.gen import generate
    from vmlab.isa.reference import run_reference

    prog = tmp_path / "p.bin"
    r = runner.invoke(
        app, ["isa", "gen", "--seed", "7", "--size", "3000", "--probs", "1/9/1/5/5", "-o", str(prog)]
    )
    assert r.exit_code == 0, r.output
    side = json.loads((tmp_path / "p.json").read_text())
    assert (side["seed"], side["size"], side["probs"], side["a"], side["l"]) == (
        7,
        3000,
        [1, 9, 1, 5, 5],
        4,
        5,
    )
    want = run_reference(generate(3000, 7, (1, 9, 1, 5, 5)))
    r = runner.invoke(app, ["isa", "run", str(prog), "--engine", "bt-tiered", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["initial"] == {"a": 4, "l": 5} and (got["a"], got["executed"]) == (want.a, want.executed)
    assert got["oracle"]["matches"] is True
    r = runner.invoke(app, ["isa", "run", str(prog), "--a", "0", "--json"])  # a flag still wins
    assert json.loads(r.stdout)["initial"] == {"a": 0, "l": 5}


def test_a_stale_description_is_refused(tmp_path: Path) -> None:
    prog = tmp_path / "p.bin"
    assert runner.invoke(app, ["isa", "gen", "--size", "100", "-o", str(prog)]).exit_code == 0
    prog.write_bytes(bytes([2] * 9 + [0]))
    r = runner.invoke(app, ["isa", "run", str(prog)])
    assert r.exit_code == 2 and "describes another program" in r.stderr


def test_engine_parameters_from_the_command_line() -> None:
    r = runner.invoke(
        app, ["isa", "run", "--scenario", "3", "--engine", "bt-superblock", "-p", "hot=1", "--json"]
    )
    assert r.exit_code == 0, r.output
    assert (
        json.loads(r.stdout)["stats"]["superblocks"] == 216
    )  # hot=1: see test_oracles (trace.superblocks(1))
    r = runner.invoke(app, ["isa", "run", "--scenario", "3", "--engine", "bt-superblock", "-p", "hott=1"])
    assert r.exit_code == 2 and "has no parameter 'hott' (fix: its parameters: hot=4, unroll=2)" in r.stderr


def test_unfinished_skeleton_is_one_line(tmp_path: Path) -> None:
    skeleton = Path(__file__).resolve().parents[3] / "labs" / "isa-emulation" / "skeleton" / "t1_interpret.py"
    r = runner.invoke(app, ["isa", "run", "--scenario", "1", "--engine-module", str(skeleton)])
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.exit_code == 1 and len(lines) == 1, r.stderr
    assert "NotImplementedError: opcode 2 at 0 is not implemented yet (t1_interpret.py:" in lines[0]


def test_a_path_from_the_lab_folder_gets_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["isa", "run", "--scenario", "1", "--engine-module", "skeleton/t1_interpret.py"])
    assert (
        r.exit_code == 2
        and "did you mean" in r.stderr
        and "isa-emulation/skeleton/t1_interpret.py" in r.stderr
    )


def test_every_isa_table_fits_80_columns(tmp_path: Path, vmlab_home: Path) -> None:
    env = {"COLUMNS": "80"}
    argv = [
        "isa",
        "bench",
        "--scenarios",
        "1",
        "--engines",
        "switch,bt-tiered",
        "-n",
        "1",
        "-o",
        str(tmp_path / "b.json"),
    ]
    r = runner.invoke(app, argv, env=env)
    assert r.exit_code == 0, r.output
    header = next(line for line in r.stdout.splitlines() if "engine" in line and "ns/ins" in line)
    for col in ("engine", "S", "ms", "ns/ins", "tr ms", "blocks", "x sw", "ok"):
        assert f" {col} " in f" {header} ", header
    assert "…" not in r.stdout and max(len(line) for line in r.stdout.splitlines()) <= 80
    r = runner.invoke(app, ["isa", "run", "--scenario", "3", "--engine", "bt-tiered"], env=env)
    assert r.exit_code == 0 and max(len(line) for line in r.stdout.splitlines()) <= 80, r.stdout
