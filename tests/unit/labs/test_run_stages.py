"""The run pipeline's stages one by one (plan, stage inputs, run steps, record), on a lab in a
temporary folder; and what holds across a whole run: lab.toml read once, the lab's name resolved to its
folder once, the typed run context reaching the step."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from vmlab.backends.context import RunContext
from vmlab.errors import UsageError
from vmlab.labs import catalog
from vmlab.labs.execute import run_step, step_context
from vmlab.labs.inputs import stage_inputs
from vmlab.labs.pipeline import RunRequest, run_dirs, run_lab
from vmlab.labs.plan import plan_run
from vmlab.labs.record import RunRecorder, new_report
from vmlab.report.model import Experiment
from vmlab.spec import lab as spec_lab

STEPS = '''
"""Step runners of the temporary lab `stages`."""
from __future__ import annotations

from vmlab.errors import PartialFailure, UsageError
from vmlab.labs.step import NoParams, StepContext
from vmlab.report.model import Experiment

SEEN = []


def where(params: NoParams, ctx: StepContext) -> dict:
    SEEN.append(ctx.run)
    files = sorted(p.name for p in ctx.inputs["tree"].rglob("*") if p.is_file())
    return {"where": Experiment(unit="files", counts={"files": len(files)}, text=ctx.run.uri or "")}


def usage(params: NoParams, ctx: StepContext) -> dict:
    raise UsageError("a usage fault")


def bug(params: NoParams, ctx: StepContext) -> dict:
    raise ZeroDivisionError("division by zero")


def half(params: NoParams, ctx: StepContext) -> dict:
    kept = Experiment(unit="x", counts={"n": 1})
    raise PartialFailure("half done", partial={"kept": kept.model_dump(), "junk": 3})


def stop(params: NoParams, ctx: StepContext) -> dict:
    raise KeyboardInterrupt
'''

LAB = """
[lab]
name = "stages"
title = "The pipeline's stages"

[inputs.tree]
kind = "dir"
default = "skeleton/tree"

[[tasks]]
id = "t1"
title = "where"
experiments = ["where"]

[[tasks]]
id = "t2"
title = "faults"
experiments = ["usage", "bug", "half", "stop"]

[experiments.where]
runner = "stages_steps:where"
inputs = ["tree"]

[experiments.usage]
runner = "stages_steps:usage"

[experiments.bug]
runner = "stages_steps:bug"

[experiments.half]
runner = "stages_steps:half"

[experiments.stop]
runner = "stages_steps:stop"

[rerun]
hook = "stages_steps:where"
"""


@pytest.fixture
def stages_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vmlab_home: Path) -> Path:
    folder = tmp_path / "labs" / "stages"
    (folder / "skeleton" / "tree" / "b").mkdir(parents=True)
    (folder / "lab.toml").write_text(LAB)
    (folder / "skeleton" / "tree" / "a.txt").write_text("alpha\n")
    (folder / "skeleton" / "tree" / "b" / "c.txt").write_text("gamma\n")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "stages_steps.py").write_text(STEPS)
    monkeypatch.setenv("VMLAB_LABS", str(tmp_path / "labs"))
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.chdir(tmp_path)
    return folder


def test_a_loaded_lab_carries_its_folder_and_the_digest_of_its_rules(stages_lab: Path) -> None:
    plan = plan_run(RunRequest(lab="stages", tasks=["t1"]))
    assert plan.lab.folder == stages_lab
    # by hand: the TOML as canonical JSON, the tutors' [rerun] left out (docs/lab-contract.md)
    import tomllib

    rules = {k: v for k, v in tomllib.loads(LAB).items() if k != "rerun"}
    text = json.dumps(rules, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert plan.lab.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert plan.steps == ["where"] and list(plan.runners) == ["where"]
    with pytest.raises(UsageError, match="has no step 'nope'"):
        plan_run(RunRequest(lab="stages", steps=["nope"]))


def test_a_lab_built_in_code_says_it_has_no_folder() -> None:
    from vmlab.errors import LabError

    lab = spec_lab.Lab.model_validate({"lab": {"name": "inline", "title": "t"}})
    with pytest.raises(LabError, match=r"not read from a lab\.toml"):
        _ = lab.folder


def test_staging_a_folder_records_the_digest_of_its_files(stages_lab: Path, tmp_path: Path) -> None:
    plan = plan_run(RunRequest(lab="stages", tasks=["t1"]))
    report = tmp_path / "out" / "report.json"
    inputs, paths = stage_inputs(plan.lab, {}, tmp_path / "scratch", report.parent / "artifacts", report)
    rec = inputs["tree"]
    # by hand: "relative name NUL sha256(content) newline" per file, in sorted order
    alpha, gamma = hashlib.sha256(b"alpha\n").hexdigest(), hashlib.sha256(b"gamma\n").hexdigest()
    want = hashlib.sha256(f"a.txt\0{alpha}\nb/c.txt\0{gamma}\n".encode()).hexdigest()
    assert (rec.kind, rec.source, rec.files, rec.size, rec.sha256) == ("dir", "default", 2, 12, want)
    assert paths["tree"] == report.parent / "artifacts" / "inputs" / "tree" / "tree"
    assert not (tmp_path / "scratch" / "inputs").exists()  # the staging copy is gone


def test_each_way_a_step_ends_is_one_outcome(stages_lab: Path, tmp_path: Path) -> None:
    plan = plan_run(RunRequest(lab="stages", tasks=["t2"]))
    dirs = run_dirs(tmp_path / "out" / "report.json")

    def outcome(step: str) -> tuple[str, str, list[str]]:
        got = run_step(plan, step, step_context(plan, step, dirs, {}, RunContext(), lambda _m: None))
        return got.status, got.message, list(got.produced)

    assert outcome("usage") == ("error", "a usage fault", [])
    assert outcome("bug") == ("error", "ZeroDivisionError: division by zero", [])
    assert outcome("half") == ("error", "half done", ["kept"])  # the partial experiment is kept
    assert outcome("stop") == ("interrupted", "interrupted by Ctrl-C", [])


def test_the_recorder_writes_the_report_after_each_change(stages_lab: Path, tmp_path: Path) -> None:
    plan = plan_run(RunRequest(lab="stages", tasks=["t1"]))
    dirs = run_dirs(tmp_path / "out" / "report.json")
    report = new_report(plan, dirs, student="s1", context=RunContext(), inputs={}, input_paths={})
    recorder = RunRecorder(report, dirs.report)
    recorder.steps["where"].status = "ok"
    recorder.accel = ("tcg", "requested")
    recorder.save()
    on_disk = json.loads(dirs.report.read_text())
    assert on_disk["steps"]["where"]["status"] == "ok" and on_disk["host"]["accel"] == "tcg"
    assert on_disk["run"]["status"] == "partial"
    assert recorder.finish(interrupted=False).run.status == "complete"
    assert json.loads(dirs.report.read_text())["run"]["status"] == "complete"
    assert recorder.finish(interrupted=True).run.status == "interrupted"


def test_a_run_reads_lab_toml_once_and_its_context_reaches_the_step(
    stages_lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Path] = []
    looked_up: list[str] = []
    read, lookup = spec_lab.read_lab_toml, catalog.lab_path

    def counted_read(path: Path) -> dict[str, Any]:
        reads.append(path)
        return read(path)

    def counted_lookup(name: str) -> Path:
        looked_up.append(name)
        return lookup(name)

    monkeypatch.setattr(spec_lab, "read_lab_toml", counted_read)
    monkeypatch.setattr(catalog, "lab_path", counted_lookup)
    context = RunContext(uri="test:///default")
    out = run_lab(RunRequest(lab="stages", tasks=["t1"], context=context, output=tmp_path / "r.json"))
    assert (len(reads), looked_up) == (1, ["stages"])
    assert out.report.steps["where"].status == "ok"
    where = out.report.experiments["where"]
    assert isinstance(where, Experiment) and where.text == "test:///default"  # it read ctx.run.uri
    assert out.report.params == {"connect": "test:///default"}
    assert out.lab.folder == stages_lab
    import stages_steps  # type: ignore[import-not-found]

    assert [context] == stages_steps.SEEN
