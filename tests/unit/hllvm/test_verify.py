"""Jasmin files through the real assembler and JVM; the CLI's exit codes and streams."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vmlab.hllvm.cli import register
from vmlab.hllvm.jvm import AssembleFailed
from vmlab.hllvm.verify import expectation, verify_file
from vmlab.labs.catalog import lab_dir

pytestmark = pytest.mark.java

SYNTAX_ERROR = """.class public Syntax
.super java/lang/Object
.method public static main([Ljava/lang/String;)V
    .limit stack 1
    iconst_1 banana
    return
.end method
"""


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Root group, as vmlab's main app."""

    return app


def test_expectation_line() -> None:
    assert expectation("; hi\n; expect: accepted\n.class public X") == "accepted"
    assert (
        expectation(";  expect:   Expecting to find integer on stack  \n")
        == "Expecting to find integer on stack"
    )
    assert expectation(".class public X") is None


@pytest.mark.slow
def test_lab_jasmin_files_meet_their_expectations(tool: Callable[[str], str]) -> None:
    tool("jasmin")
    tool("java")
    files = sorted((lab_dir("hll-vm") / "jasmin").glob("*.j"))
    assert len(files) >= 4
    for f in files:
        (v,) = verify_file(f)
        assert v.expect is not None, f
        assert v.expect_met, (f.name, v)
        assert v.major is not None and v.major < 50  # jasmin-sable writes pre-StackMapTable versions
    (good,) = verify_file(lab_dir("hll-vm") / "jasmin" / "Good.j")
    assert good.stdout == "5\n"  # 2 + 3


def test_assemble_error_names_the_line(tmp_path: Path, tool: Callable[[str], str]) -> None:
    tool("jasmin")
    bad = tmp_path / "Syntax.j"
    bad.write_text(SYNTAX_ERROR)
    with pytest.raises(AssembleFailed) as e:
        verify_file(bad)
    assert "Syntax.j:" in e.value.message and "JAS Error" in e.value.message
    assert e.value.exit_code == 2


def test_cli_verify_exit_codes_and_streams(tmp_path: Path, tool: Callable[[str], str]) -> None:
    tool("jasmin")
    tool("java")
    runner = CliRunner()
    app = _app()
    res = runner.invoke(
        app, ["hllvm", "verify", str(lab_dir("hll-vm") / "jasmin" / "BadFloatAdd.j"), "--json"]
    )
    assert res.exit_code == 0, res.output
    (v,) = json.loads(res.stdout)
    assert v["status"] == "rejected" and "Expecting to find integer on stack" in v["message"]
    res = runner.invoke(app, ["hllvm", "verify", str(lab_dir("hll-vm") / "jasmin" / "Good.j")])
    assert res.exit_code == 0 and "accepted" in res.stdout
    bad = tmp_path / "Syntax.j"
    bad.write_text(SYNTAX_ERROR)
    res = runner.invoke(app, ["hllvm", "verify", str(bad)])
    assert res.exit_code == 2
    assert "does not assemble" in res.stderr and "Syntax.j:" in res.stderr
    assert res.stdout == ""
