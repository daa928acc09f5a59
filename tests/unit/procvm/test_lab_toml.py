"""labs/process-vm/lab.toml against the code: runners exist, params validate against their models,
checks are well-formed and point at experiments a step produces, inputs' defaults exist."""

import importlib
import tomllib
import typing
from typing import Any

import pytest
from pydantic import TypeAdapter

from vmlab.labs.catalog import lab_dir
from vmlab.labs.step import StepParams
from vmlab.spec.checks import Check

LAB = tomllib.loads((lab_dir("process-vm") / "lab.toml").read_text())
# experiment ids each step returns (the keys of its result)
PRODUCES = {
    "counts": {"counts"},
    "vex": {"vex"},
    "slowdown": {"slowdown"},
    "qemu": {"qemu-x86_64", "qemu-aarch64", "qemu-time"},
    "observer": {"observer"},
}


def _runner(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("step", sorted(LAB["experiments"]))
def test_params_validate_against_the_runner_model(step: str) -> None:
    decl = LAB["experiments"][step]
    fn = _runner(decl["runner"])
    model = typing.get_type_hints(fn)["params"]
    assert issubclass(model, StepParams)
    model.model_validate(decl.get("params", {}))
    assert set(decl.get("inputs", [])) <= set(LAB["inputs"])


def test_every_check_is_valid_and_points_at_a_step() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(Check)
    produced = set().union(*PRODUCES.values())
    tasks = {t["id"] for t in LAB["tasks"]}
    for raw in LAB["checks"]:
        check = adapter.validate_python(raw)
        assert check.task in tasks
        paths = [getattr(check, a) for a in ("path", "num", "den") if hasattr(check, a)]
        paths += getattr(check, "paths", [])
        for p in paths:
            assert p.split(".")[0] in produced, (check.id, p)


def test_every_step_is_in_a_task_and_known_here() -> None:
    in_tasks = {e for t in LAB["tasks"] for e in t["experiments"]}
    assert in_tasks == set(LAB["experiments"]) == set(PRODUCES)


def test_input_defaults_exist() -> None:
    # every input but the answers file (which has none) defaults to a file or folder of the lab
    assert {n for n, d in LAB["inputs"].items() if "default" not in d} <= {"answers"}
    for name, decl in LAB["inputs"].items():
        if "default" not in decl:
            continue
        path = lab_dir("process-vm") / decl["default"]
        assert path.is_dir() if decl["kind"] == "dir" else path.is_file(), name
