"""labs/hll-vm/lab.toml: valid against the lab model, runners importable, params valid for them."""

from __future__ import annotations

import importlib
import inspect
import os
import tomllib
from pathlib import Path

import pytest

from vmlab.errors import NotAvailable
from vmlab.labs.catalog import lab_dir
from vmlab.labs.step import StepContext, StepParams


def test_lab_toml_parses() -> None:
    from vmlab.spec.lab import parse_lab

    lab = parse_lab(lab_dir("hll-vm") / "lab.toml")
    assert lab.lab.name == "hll-vm"
    assert all("." not in seg for c in lab.checks for seg in [c.id])


def test_runners_and_params() -> None:
    data = tomllib.loads((lab_dir("hll-vm") / "lab.toml").read_text())
    for step_id, step in data["experiments"].items():
        module, func = step["runner"].split(":")
        fn = getattr(importlib.import_module(module), func)
        model = inspect.get_annotations(fn, eval_str=True)["params"]
        assert issubclass(model, StepParams), step_id
        model.model_validate(step.get("params", {}))


def test_check_paths_are_dot_free_keys() -> None:
    """Every path segment is a plain key (no quoting syntax needed)."""
    data = tomllib.loads((lab_dir("hll-vm") / "lab.toml").read_text())
    for c in data["checks"]:
        for p in [c.get("path"), c.get("num"), c.get("den"), *c.get("paths", [])]:
            if p:
                assert all(
                    seg and seg.replace("-", "_").replace("_", "a").isalnum() for seg in p.split(".")
                ), p


def test_no_jdk_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without java on PATH a Java step fails with NotAvailable; the CPython step still runs."""
    from vmlab.hllvm import lab

    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no java, no javac
    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "home"))
    ctx = StepContext(
        run_id="t", lab="hll-vm", step_id="jit-modes", scratch=tmp_path,
        artifacts_dir=tmp_path / "artifacts", report_dir=tmp_path, lab_dir=lab_dir("hll-vm"),
    )  # fmt: skip
    with pytest.raises(NotAvailable) as e:
        lab.jit_modes(lab.JitModesParams.model_validate({}), ctx)
    assert "\n" not in e.value.one_line() and "apt-get install" in e.value.one_line()
    ctx.step_id = "pyspec"
    out = lab.pyspec(lab.PyspecParams.model_validate({"depth": 8, "repeats": 1}), ctx)
    assert set(out) == {"pyspec", "py-tracing"}
    assert os.environ["PATH"] == str(tmp_path)
