"""Bad input never shows a traceback: one line naming the problem and the fix, exit 2, nothing written.

Every expected value comes from the input the test builds (the depth it nests, the size it makes, the
path it breaks), never from what vmlab printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vmlab.cli.main import app

runner = CliRunner()
REPO_LABS = Path(__file__).parents[3] / "labs"
DEPTH_LIMIT = 64  # what the brief asks for and docs/troubleshooting.md promises
SIZE_LIMIT = 64 * 1024 * 1024


def the_error_line(stderr: str) -> str:
    """stderr holds exactly one line, an `error:` line, and no traceback."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
def report(tmp_path: Path, vmlab_home: Path) -> Path:
    """A real warm-up report (few runs), as a student's run writes it."""
    path = tmp_path / "run" / "report.json"
    args = ["lab", "run", "warmup", "-o", str(path), "--set", "true.runs=3", "--set", "python.runs=3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return path


# ---- deep or huge JSON -------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["check"], ["report", "show"]])
def test_a_report_nested_100000_deep_is_one_line(tmp_path: Path, command: list[str]) -> None:
    deep = tmp_path / "r.json"
    deep.write_text(nested(100_000))
    result = runner.invoke(app, [*command, str(deep)])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"{deep} nests JSON 100000 levels deep (limit {DEPTH_LIMIT})" in line


def test_just_past_the_depth_limit_is_refused_and_at_it_is_not(tmp_path: Path) -> None:
    past = tmp_path / "past.json"
    past.write_text('{"a": ' * (DEPTH_LIMIT + 1) + "1" + "}" * (DEPTH_LIMIT + 1))
    result = runner.invoke(app, ["check", str(past)])
    assert result.exit_code == 2
    assert f"nests JSON {DEPTH_LIMIT + 1} levels deep" in the_error_line(result.stderr)
    at = tmp_path / "at.json"
    at.write_text(nested(DEPTH_LIMIT))
    result = runner.invoke(app, ["check", str(at)])
    # parsed (an array, so not a report), never refused for its depth
    assert result.exit_code == 2 and "is not a JSON object" in the_error_line(result.stderr)


def test_brackets_inside_strings_do_not_count(report: Path) -> None:
    data = json.loads(report.read_text())
    data["run"]["student"] = "[" * 10_000 + '\\"{' * 100
    report.write_text(json.dumps(data))
    result = runner.invoke(app, ["check", str(report), "--json"])
    assert result.exit_code in (0, 1), result.output  # graded, whatever the verdict
    assert "nests JSON" not in result.output


def test_a_report_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as f:  # sparse: the size is real, no disk is used
        f.truncate(SIZE_LIMIT + 1024)
    result = runner.invoke(app, ["report", "show", str(big)])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"{big} is {SIZE_LIMIT + 1024} bytes" in line and "64 MiB" in line


def test_a_folder_or_fifo_in_place_of_a_report_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "dir.json"
    folder.mkdir()
    result = runner.invoke(app, ["check", str(folder)])
    assert result.exit_code == 2 and f"{folder} is a folder" in the_error_line(result.stderr)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["check", str(fifo)])  # never waits for a writer
    assert result.exit_code == 2 and f"{fifo} is not a regular file" in the_error_line(result.stderr)


def test_a_deep_class_json_is_one_line(tmp_path: Path) -> None:
    shard = tmp_path / "shard"
    shard.mkdir()
    (shard / "class.json").write_text(nested(100_000))
    result = runner.invoke(app, ["grade", "merge", str(shard), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"{shard / 'class.json'} nests JSON 100000 levels deep (limit {DEPTH_LIMIT})" in line
    assert not (tmp_path / "out").exists()


def test_a_deep_hand_in_is_unreadable_and_the_class_is_graded(report: Path, tmp_path: Path) -> None:
    cls = tmp_path / "class"
    (cls / "alice").mkdir(parents=True)
    shutil.copy(report, cls / "alice" / "report.json")
    shutil.copytree(report.parent / "artifacts", cls / "alice" / "artifacts")
    (cls / "bob").mkdir()
    (cls / "bob" / "report.json").write_text(nested(100_000))
    out = tmp_path / "out"
    result = runner.invoke(app, ["grade", str(cls), "-o", str(out), "--lab", "warmup", "--json"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    students = {s["handin"]: s for s in json.loads((out / "class.json").read_text())["students"]}
    assert students["alice"]["status"] != "invalid"
    bob = students["bob"]
    assert bob["status"] == "invalid" and [f["code"] for f in bob["flags"]] == ["unreadable"]
    assert "nests JSON 100000 levels deep (limit 64)" in bob["flags"][0]["message"]


def test_a_deep_set_value_is_one_line_and_writes_nothing(tmp_path: Path, vmlab_home: Path) -> None:
    out = tmp_path / "r.json"
    args = ["lab", "run", "warmup", "-o", str(out), "--set", f"true.runs={nested(5000)}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert f"nests JSON 5000 levels deep (limit {DEPTH_LIMIT})" in the_error_line(result.stderr)
    assert not out.exists() and not vmlab_home.exists()


# ---- --set and --input that name nothing ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named", "valid"),
    [
        (["warmup", "--set", "nosuch.x=1"], "'nosuch'", ["true", "python", "uname"]),
        (["warmup", "--set", "true.nosuchkey=1"], "nosuchkey", ["argv", "runs"]),
        (["warmup", "--task", "t1-native", "--set", "python.runs=1"], "'python' is not part", ["true"]),
        (["kvm-api", "--input", "nosuch=/etc/hostname"], "'nosuch'", ["program"]),
        (["warmup", "--input", "nosuch=/etc/hostname"], "'nosuch'", ["answers"]),
        (["kvm-api", "--input", "program=/nonexistent"], "/nonexistent: no such file", ["skeleton/line.asm"]),
    ],
)
def test_set_and_input_naming_nothing(
    tmp_path: Path, vmlab_home: Path, args: list[str], named: str, valid: list[str]
) -> None:
    out = tmp_path / "out" / "r.json"
    result = runner.invoke(app, ["lab", "run", *args, "-o", str(out)])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert named in line and all(v in line for v in valid), line
    assert line.count("(fix: ") <= 1
    assert not out.parent.exists() and not vmlab_home.exists()  # no run folder, no report


def test_an_input_that_is_a_dangling_symlink_or_a_fifo(tmp_path: Path, vmlab_home: Path) -> None:
    link = tmp_path / "prog.asm"
    link.symlink_to(tmp_path / "gone.asm")
    result = runner.invoke(app, ["lab", "run", "kvm-api", "--input", f"program={link}"])
    assert result.exit_code == 2
    assert f"{link}: no such file (a symlink to {tmp_path / 'gone.asm'}" in the_error_line(result.stderr)
    fifo = tmp_path / "fifo.asm"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["lab", "run", "kvm-api", "--input", f"program={fifo}"])
    assert result.exit_code == 2 and "this is a FIFO" in the_error_line(result.stderr)
    assert not vmlab_home.exists()


# ---- a lab.toml that does not parse -------------------------------------------------------------

BROKEN = "[lab\nname = 'broken'\n"  # line 1: the table header is never closed


@pytest.fixture
def labs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """VMLAB_LABS with the real warm-up lab and one lab whose lab.toml is not TOML."""
    root = tmp_path / "labs"
    shutil.copytree(REPO_LABS / "warmup", root / "warmup")
    (root / "broken").mkdir()
    (root / "broken" / "lab.toml").write_text(BROKEN)
    monkeypatch.setenv("VMLAB_LABS", str(root))
    return root


def test_lab_ls_skips_a_broken_lab_with_one_warning(labs: Path) -> None:
    result = runner.invoke(app, ["lab", "ls", "--json"])
    assert result.exit_code == 0
    assert [lab["name"] for lab in json.loads(result.stdout)] == ["warmup"]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: lab broken skipped: ")
    assert f"{labs / 'broken' / 'lab.toml'} is not valid TOML" in lines[0] and "line 1" in lines[0]


def test_help_never_crashes_on_a_broken_lab(labs: Path) -> None:
    env = {**os.environ, "VMLAB_LABS": str(labs)}
    code = "import sys; sys.argv = ['vmlab', '--help']; from vmlab.cli.main import main; main()"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 0 and "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: lab broken skipped: ")
    assert f"{labs / 'broken' / 'lab.toml'} is not valid TOML" in lines[0]
    assert "lab" in p.stdout and "check" in p.stdout


def test_running_a_broken_lab_is_one_line(labs: Path, vmlab_home: Path) -> None:
    result = runner.invoke(app, ["lab", "run", "broken"])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"{labs / 'broken' / 'lab.toml'} is not valid TOML" in line and "line 1" in line
    assert not vmlab_home.exists()


def test_check_and_grade_against_a_broken_lab_are_one_line(report: Path, labs: Path, tmp_path: Path) -> None:
    broken = labs / "warmup" / "lab.toml"
    broken.write_text(BROKEN)
    for args in (["check", str(report)], ["grade", str(report.parent), "-o", str(tmp_path / "out")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
        assert "Traceback" not in result.stderr and len(errors) == 1
        assert f"{broken} is not valid TOML" in errors[0]
    assert not (tmp_path / "out").exists()


def test_a_lab_toml_nested_too_deep_is_one_line(labs: Path) -> None:
    toml = labs / "broken" / "lab.toml"
    toml.write_text("x = " + nested(100_000) + "\n")
    result = runner.invoke(app, ["lab", "show", "broken"])
    assert result.exit_code == 2
    assert f"{toml} is not valid TOML: it nests too deep" in the_error_line(result.stderr)


# ---- one line, one fix; the partial report on a line of its own ----------------------------------


def test_a_partial_report_is_its_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    from vmlab.cli.output import errors_to_exit
    from vmlab.errors import BackendError

    inner = BackendError("guest g1 did not boot", hint="vmlab doctor")
    with pytest.raises(typer.Exit) as exited, errors_to_exit():
        # what `vmlab compare` raises: the step's one line, the kept report as a hint
        raise BackendError(f"compare error: {inner.one_line()}", hint="partial report: /r/report.json")
    assert exited.value.exit_code == 4
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        "error: compare error: guest g1 did not boot (fix: vmlab doctor)",
        "partial report: /r/report.json",
    ]


def test_an_error_with_a_fix_and_a_partial_report(capsys: pytest.CaptureFixture[str]) -> None:
    from vmlab.cli.output import errors_to_exit
    from vmlab.errors import NotAvailable

    with pytest.raises(typer.Exit) as exited, errors_to_exit():
        raise NotAvailable("docker is down", hint="make setup", partial_report=Path("/r/report.json"))
    assert exited.value.exit_code == 3
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == ["error: docker is down (fix: make setup)", "partial report: /r/report.json"]
