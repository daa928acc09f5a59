"""Expected failures are one clear line with a fix, through the library and through the CLI."""

from pathlib import Path

import pytest
import typer
from tests.conftest import need_program
from typer.testing import CliRunner

from vmlab.errors import NotAvailable, UsageError
from vmlab.procvm.cli import register
from vmlab.procvm.runs import execute
from vmlab.procvm.workloads import build

runner = CliRunner()


def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def test_unknown_tool(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown tool 'helgrindx' \(known: native, none, memcheck"):
        execute("helgrindx", ["/bin/true"], scratch=tmp_path)


def test_unknown_tool_cli() -> None:
    r = runner.invoke(app(), ["procvm", "run", "loop", "--tool", "nope"])
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown tool 'nope'" in lines[0]


def test_unknown_workload_cli() -> None:
    r = runner.invoke(app(), ["procvm", "run", "nosuch", "--tool", "none"])
    assert r.exit_code == 2
    assert "unknown workload 'nosuch'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_valgrind_missing_from_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(NotAvailable) as e:
        execute("none", ["/bin/true"], scratch=tmp_path)
    # the package is labs/process-vm/lab.toml's [tools.valgrind] package
    assert e.value.one_line() == "valgrind is not on PATH (fix: apt-get install valgrind (or make setup))"


def test_qemu_user_missing_names_the_package_that_brings_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program is qemu-aarch64, the package qemu-user (labs/process-vm/lab.toml [tools.qemu-aarch64])."""
    from vmlab.procvm.runs import require

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotAvailable) as e:
        require("qemu-aarch64")
    assert e.value.hint == "apt-get install qemu-user (or make setup)"


def test_valgrind_missing_from_path_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    r = runner.invoke(app(), ["procvm", "run", "true", "--tool", "memcheck"])
    assert r.exit_code == 3, r.output
    assert r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "error: valgrind is not on PATH (fix: apt-get install valgrind (or make setup))"
    ]


def test_workload_that_does_not_compile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_program("gcc", "gcc")
    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "home"))
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { return undeclared_thing; }\n")
    with pytest.raises(UsageError) as e:
        build("bad", "x86_64", source=bad)
    line = e.value.one_line()
    assert "\n" not in line
    assert line.startswith("workload bad.c does not compile for x86_64: ")
    assert "undeclared_thing" in line


def test_workload_that_does_not_compile_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_program("gcc", "gcc")
    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "home"))
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { return }\n")
    r = runner.invoke(app(), ["procvm", "run", str(bad), "--tool", "none"])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.c does not compile" in lines[0]
