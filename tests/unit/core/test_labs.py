from __future__ import annotations

from pathlib import Path

import pytest

from vmlab.errors import LabError, UsageError
from vmlab.labs.catalog import lab_names, load_lab, resolve
from vmlab.labs.plan import params_model, select_steps
from vmlab.spec.lab import parse_lab

GOOD = """
[lab]
name = "x"
title = "X"

[[tasks]]
id = "t1"
title = "T"
experiments = ["a"]

[experiments.a]
runner = "vmlab.warmup.lab:startup"
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
    assert lab.lab.name == "x"
    assert select_steps(lab, None, None) == (["a"], ["t1"])
    assert select_steps(lab, ["t1"], None) == (["a"], ["t1"])


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
            lambda s: s.replace('runner = "vmlab.warmup.lab:startup"', 'runner = "no colon"'),
            "experiments.a.runner",
            "should match pattern",
        ),
        (lambda s: s + "\n[extra]\nx = 1\n", "extra", "Extra inputs are not permitted"),
        (
            lambda s: s.replace("params = { argv", 'requires = ["a b"]\nparams = { argv'),
            "experiments.a.requires[0]",
            "should match pattern",
        ),
        (
            lambda s: s.replace("params = { argv", 'inputs = ["engine"]\nparams = { argv'),
            "<top>",
            "input 'engine', which is not declared",
        ),
        (
            lambda s: s.replace(
                'title = "X"\n', 'title = "X"\n\n[inputs.e]\nkind = "file"\ndefault = "../x"\n', 1
            ),
            "inputs.e",
            "must be a path inside the lab folder",
        ),
        (
            lambda s: s.replace('title = "X"\n', 'title = "X"\ntools = ["gcc; rm"]\n', 1),
            "lab.tools[0]",
            "should match pattern",
        ),
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
    with pytest.raises(UsageError, match="no task 't7'"):
        select_steps(lab, ["t7"], None)


def test_unknown_lab_lists_known() -> None:
    with pytest.raises(LabError, match=r"no lab named 'nope' .*warmup"):
        load_lab("nope")


def test_every_shipped_lab_parses_and_its_runners_declare_typed_params() -> None:
    names = lab_names()
    assert {"warmup", "system-vm", "kvm-api", "isa-emulation"} <= set(names)
    for name in names:
        lab = load_lab(name)
        for step in lab.experiments.values():
            fn = resolve(step.runner)
            model = params_model(fn, step.runner)
            model.model_validate(step.params)  # lab.toml's own params are valid for the runner
        for spec in (lab.lab.views.table, lab.lab.views.plots, lab.lab.cli):
            if spec is not None:
                assert callable(resolve(spec)), (name, spec)
        for input_name, decl in lab.inputs.items():
            if decl.default is not None:
                assert (Path("labs") / name / decl.default).exists(), (name, input_name)


def test_unknown_runner_is_a_lab_error() -> None:
    with pytest.raises(LabError, match="cannot import"):
        resolve("vmlab.nowhere:run")
    with pytest.raises(LabError, match="has no function"):
        resolve("vmlab.warmup.lab:nothing")


def test_a_runner_without_a_params_model_is_refused() -> None:
    with pytest.raises(UsageError, match="annotated with a StepParams model"):
        params_model(lambda params, ctx: {}, "x:y")
