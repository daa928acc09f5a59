"""A lab declares its tools and finds its folder through the run alone: a lab in a temporary folder,
the second root of a two-root VMLAB_LABS, with a fake compiler on PATH (no shared file names it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmlab.errors import LabError
from vmlab.labs.pipeline import RunRequest, run_lab

STEPS = """
from vmlab.labs.step import NoParams, StepContext
from vmlab.report.model import Experiment


def read(params: NoParams, ctx: StepContext) -> dict:
    n = int((ctx.lab_dir / "data" / "n.txt").read_text())
    return {ctx.step_id: Experiment(unit="count", counts={"n": n}, text=str(ctx.lab_dir))}
"""

LAB = """
[lab]
name = "toolbox"
title = "A lab with tools of its own"
tools = ["fakecc"]

[tools.fakecc]
package = "fakecc-pkg"
version = ["fakecc", "--ver"]
pattern = 'fakecc v(\\S+)'

[tools.absent]
program = "vmlab-no-such-program"
package = "absent-pkg extra-pkg"

[[tasks]]
id = "t1"
title = "both"
experiments = ["uses", "needs-absent"]

[experiments.uses]
runner = "toolbox_steps:read"
requires = ["fakecc"]

[experiments.needs-absent]
runner = "toolbox_steps:read"
requires = ["absent"]
"""


@pytest.fixture
def toolbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vmlab_home: Path) -> Path:
    first, second = tmp_path / "first", tmp_path / "second"
    (first / "other").mkdir(parents=True)
    (first / "other" / "lab.toml").write_text('[lab]\nname = "other"\ntitle = "another lab"\n')
    (second / "toolbox" / "data").mkdir(parents=True)
    (second / "toolbox" / "lab.toml").write_text(LAB)
    (second / "toolbox" / "data" / "n.txt").write_text("42\n")
    pkg, bin_dir = tmp_path / "pkg", tmp_path / "bin"
    pkg.mkdir()
    bin_dir.mkdir()
    (pkg / "toolbox_steps.py").write_text(STEPS)
    fakecc = bin_dir / "fakecc"
    fakecc.write_text("#!/bin/sh\necho 'fakecc v9.8.7 (a compiler of no consequence)'\n")
    fakecc.chmod(0o755)
    monkeypatch.setenv("VMLAB_LABS", f"{first}:{second}")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.syspath_prepend(str(pkg))
    return second / "toolbox"


def test_declared_tools_gate_steps_and_are_recorded_and_the_step_gets_its_folder(
    toolbox: Path, tmp_path: Path
) -> None:
    result = run_lab(RunRequest(lab="toolbox", output=tmp_path / "r.json"))
    report = result.report
    # the folder: the second root's, handed to the step by the pipeline
    assert report.steps["uses"].status == "ok", report.steps["uses"].message
    assert report.experiments["uses"].counts == {"n": 42}  # type: ignore[union-attr]
    assert report.experiments["uses"].text == str(toolbox)  # type: ignore[union-attr]
    # a declared tool missing: the step is skipped, the fix names the packages lab.toml gives
    skipped = report.steps["needs-absent"]
    assert skipped.status == "skipped"
    assert "vmlab-no-such-program is not installed" in skipped.message
    assert "apt-get install absent-pkg extra-pkg (or make setup)" in skipped.message
    # the version read as lab.toml says: `fakecc --ver`, first group of the pattern
    assert report.host.versions["fakecc"] == "9.8.7"


def test_the_doctor_lists_every_labs_tools(toolbox: Path) -> None:
    from vmlab.host.doctor import tool_row
    from vmlab.labs.tools import every_lab_tool

    warned: list[str] = []
    tools = {t.name: t for t in every_lab_tool(warned.append)}
    assert set(tools) == {"fakecc", "absent"} and not warned
    ok, missing = tool_row(tools["fakecc"]), tool_row(tools["absent"])
    assert (ok.status, ok.detail) == ("ok", "fakecc 9.8.7")
    assert (missing.status, missing.fix) == ("warn", "apt-get install absent-pkg extra-pkg (or make setup)")


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('[tools.cc]\npackage = "gcc"\npattern = "no group"\n', "tools.cc"),
        ('[tools.cc]\npackage = "gcc"\npattern = "(unclosed"\n', "tools.cc"),
        ('[tools.cc]\npackage = "GCC; rm -rf /"\n', "tools.cc.package"),
        ('[tools.cc]\nprogram = "gcc"\n', "tools.cc.package"),
        ('[tools.cc]\npackage = "gcc"\nnote = "not a spec"\n', "tools.cc.note"),
    ],
)
def test_a_bad_tool_table_is_one_line_naming_the_key(tmp_path: Path, table: str, key: str) -> None:
    from vmlab.spec.lab import parse_lab

    path = tmp_path / "lab.toml"
    path.write_text('[lab]\nname = "x"\ntitle = "x"\n\n' + table)
    with pytest.raises(LabError) as e:
        parse_lab(path)
    assert f"key {key}:" in e.value.message and "\n" not in e.value.one_line()
