from __future__ import annotations

from pathlib import Path

import pytest

from vmlab.errors import LabError
from vmlab.labs.model import parse_lab
from vmlab.labs.runner import lab_names, load_lab, resolve_runner, steps_for

GOOD = """
[lab]
name = "x"
title = "X"

[[tasks]]
id = "t1"
title = "T"
experiments = ["a"]

[experiments.a]
runner = "vmlab.experiments.process:startup"
params = { argv = ["/bin/true"] }

[[checks]]
id = "c1"
task = "t1"
kind = "present"
path = "a"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "lab.toml"
    p.write_text(text)
    return p


def test_good_lab_parses(tmp_path: Path) -> None:
    lab = parse_lab(write(tmp_path, GOOD))
    assert lab.lab.name == "x" and steps_for(lab, None) == ["a"] and steps_for(lab, "t1") == ["a"]


def test_bad_toml_names_file(tmp_path: Path) -> None:
    p = write(tmp_path, "[lab\nname=")
    with pytest.raises(LabError, match=f"{p} is not valid TOML"):
        parse_lab(p)


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (lambda s: s.replace('title = "X"\n', ""), "lab.title", "Field required"),
        (lambda s: s.replace('kind = "present"', 'kind = "between"'), "checks[0 id='c1']", "does not match"),
        (
            lambda s: s.replace('kind = "present"\npath = "a"', 'kind = "range"\npath = "a"'),
            "checks[0 id='c1']",
            "needs lo, hi or both",
        ),
        (lambda s: s.replace('experiments = ["a"]', 'experiments = ["b"]'), "<top>", "experiment 'b'"),
        (lambda s: s.replace('task = "t1"', 'task = "t9"'), "<top>", "task 't9'"),
        (
            lambda s: s.replace('runner = "vmlab.experiments.process:startup"', 'runner = "no colon"'),
            "experiments.a.runner",
            "should match pattern",
        ),
        (lambda s: s + "\n[extra]\nx = 1\n", "extra", "Extra inputs are not permitted"),
    ],
)
def test_malformed_lab_names_key_and_problem(tmp_path: Path, mutate, key: str, problem: str) -> None:  # type: ignore[no-untyped-def]
    p = write(tmp_path, mutate(GOOD))
    with pytest.raises(LabError) as e:
        parse_lab(p)
    msg = e.value.one_line()
    assert str(p) in msg and f"key {key}" in msg and problem in msg


def test_unknown_task(tmp_path: Path) -> None:
    lab = parse_lab(write(tmp_path, GOOD))
    with pytest.raises(LabError, match="no task 't7'"):
        steps_for(lab, "t7")


def test_unknown_lab_lists_known() -> None:
    with pytest.raises(LabError, match=r"no lab named 'nope' .*warmup"):
        load_lab("nope")


def test_every_shipped_lab_parses_and_its_runners_import() -> None:
    names = lab_names()
    assert "warmup" in names
    for name in names:
        lab = load_lab(name)
        for step in lab.experiments.values():
            assert callable(resolve_runner(step.runner))


def test_unknown_runner_is_a_lab_error() -> None:
    with pytest.raises(LabError, match="cannot import"):
        resolve_runner("vmlab.nowhere:run")
    with pytest.raises(LabError, match="has no function"):
        resolve_runner("vmlab.experiments.process:nothing")
