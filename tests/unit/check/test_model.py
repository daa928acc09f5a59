"""lab.toml checks are validated at load: every mistake is a LabError naming the check's key."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmlab.errors import LabError
from vmlab.labs.catalog import lab_names, load_lab
from vmlab.spec.expr import compile_expr
from vmlab.spec.lab import parse_lab
from vmlab.spec.paths import parse_path

HEAD = """
[lab]
name = "x"
title = "X"

[[tasks]]
id = "t1"
title = "T"
experiments = ["a"]

[experiments.a]
runner = "vmlab.warmup.lab:startup"

[[checks]]
id = "c1"
task = "t1"
"""


@pytest.mark.parametrize(
    ("check", "key", "problem"),
    [
        (
            'kind = "regex"\npath = "a.text"\npattern = "(unclosed"',
            "pattern",
            "not a valid regular expression",
        ),
        ('kind = "expr"\nexpr = "a.b-c > 1"', "<top>", "quote such a path in backticks"),
        ('kind = "expr"\nexpr = "__import__(\'os\') == 1"', "<top>", "__import__() (known:"),
        ('kind = "expr"\nexpr = "len(a.samples)"', "<top>", "is not a condition"),
        ('kind = "present"\npath = \'a."b.c\'', "path", "unclosed quote"),
        ('kind = "present"\npath = "a..b"', "path", "empty segment"),
        ('kind = "present"\npath = "a.{engine}"', "path", "unknown placeholder {engine}"),
        ('kind = "present"\npath = "a.{member}"', "<top>", "`each` is not given"),
        ('kind = "present"\npath = "a"\neach = ["x"]', "<top>", "no path uses {member}"),
        ('kind = "present"\npath = "a"\npoints = -1', "points", "greater than or equal to 0"),
        ('kind = "present"\npath = "a"\nwhen = "host.accel = 1"', "when", "does not parse"),
        ('kind = "compare"\nleft = "a"\nright = "a"\nop = "=<"', "op", "Input should be"),
    ],
)
def test_bad_check_names_key_and_problem(tmp_path: Path, check: str, key: str, problem: str) -> None:
    p = tmp_path / "lab.toml"
    p.write_text(HEAD + check + "\n")
    with pytest.raises(LabError) as e:
        parse_lab(p)
    msg = e.value.one_line()
    assert "checks[0 id='c1']" in msg and problem in msg
    # the `expr` cases give no field key: spec/lab.py's _toml_key drops a field named like the kind
    if key != "<top>":
        assert f"checks[0 id='c1'].{key}" in msg


@pytest.mark.parametrize("name", lab_names())
def test_every_shipped_lab_loads(name: str) -> None:
    lab = load_lab(name)
    for c in lab.checks:
        assert c.points >= 0


def test_isa_oracle_checks_cover_every_engine_and_task_with_the_published_oracles() -> None:
    """Four group checks assert, for every engine and every task step, the homework's oracle values."""
    lab = load_lab("isa-emulation")
    expected = {
        "S1": "A=30003 instructions=10000",
        "S2": "A=-1 instructions=10000",
        "S3": "A=95 instructions=719821",
        "S4": "A=138 instructions=21516018",
    }
    # the student's engine of each task, t4's twice (on first use and staged); vmlab's reference
    # engines are no step of the lab: they are the tasks' answers and the student kit leaves them out
    engines = ["t1", "t2", "t3", "t4", "t4-staged", "t5", "t6"]
    pairs = {
        (member, c.path.replace("{member}", member), c.value)
        for c in lab.checks
        if c.kind == "exact" and isinstance(c.each, list)
        for member in c.each
    }
    scenarios = {(e, f"{e}.{s}.values.outcome", v) for e in engines for s, v in expected.items()}
    # and the student's own program SV, whose oracle the run computes with the reference interpreter
    assert pairs == scenarios | {(e, f"{e}.SV.values.matches_oracle", True) for e in engines}


def test_path_syntax() -> None:
    p = parse_path('jit.methods."java.lang.String::hashCode".count')
    assert p.segments == ("jit", "methods", "java.lang.String::hashCode", "count") and not p.envelope
    assert parse_path("host.accel").envelope
    assert not parse_path('"host".samples').envelope  # an experiment named like a root, quoted
    assert parse_path("traps.vm.counts.headline:before").segments[-1] == "headline:before"


def test_expression_paths() -> None:
    e = compile_expr("median(`programs.console-bytewise`) / median(none) > 1")
    assert [str(p) for p in e.paths.values()] == ["programs.console-bytewise", "none"]
