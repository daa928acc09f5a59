"""The run pipeline on a lab defined in a temporary folder (VMLAB_LABS): no shared file is touched.

The lab `demo` has its own step module, a declared student input, a view and a CLI group, so these
tests prove that a new lab plugs in through its lab.toml alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import interrupt_when
from typer.testing import CliRunner

from vmlab.errors import UsageError
from vmlab.labs.pipeline import RunRequest, run_lab
from vmlab.report.io import load_report

STEPS = '''
"""Step runners of the temporary lab."""
from __future__ import annotations

import time
from pydantic import Field
from vmlab.labs.step import NoParams, StepContext, StepParams
from vmlab.report.model import Experiment
from vmlab.report.stats import summarize


class CountParams(StepParams):
    min_length: int = Field(1, ge=1)


def count(params: CountParams, ctx: StepContext) -> dict:
    path = ctx.inputs["words"]
    words = [w for w in path.read_text().split() if len(w) >= params.min_length]
    (ctx.scratch / "words.log").write_text("\\n".join(words))
    ctx.attach(ctx.scratch / "words.log")
    return {"count": Experiment(unit="words", counts={"words": len(words)}, text=str(path))}


def boom(params: NoParams, ctx: StepContext) -> dict:
    raise RuntimeError("the step broke on purpose")


class SleepParams(StepParams):
    seconds: float = 0.0


def sleep(params: SleepParams, ctx: StepContext) -> dict:
    time.sleep(params.seconds)
    return {ctx.step_id: Experiment(unit="s", samples=[params.seconds], summary=summarize([params.seconds]))}


def table(report) -> str:
    return "demo view: %d words" % report.experiments["count"].counts["words"]


def register(app) -> None:
    import typer

    group = typer.Typer()

    @group.command("hello")
    def hello() -> None:
        print("hello from the demo lab")

    app.add_typer(group, name="demo")
'''

LAB = """
[lab]
name = "demo"
title = "A lab that lives outside the repository"
views = { table = "demo_steps:table" }
cli = "demo_steps:register"

[inputs.words]
kind = "file"
default = "skeleton/words.txt"
suffixes = [".txt"]

[[tasks]]
id = "t1"
title = "count"
experiments = ["count"]

[[tasks]]
id = "t2"
title = "a broken step among good ones"
experiments = ["boom", "after"]

[[tasks]]
id = "t3"
title = "slow"
experiments = ["quick", "slow"]

[experiments.count]
runner = "demo_steps:count"
inputs = ["words"]

[experiments.boom]
runner = "demo_steps:boom"

[experiments.after]
runner = "demo_steps:sleep"

[experiments.quick]
runner = "demo_steps:sleep"

[experiments.slow]
runner = "demo_steps:sleep"
params = { seconds = 0.0 }
timeout_s = 30

[[checks]]
id = "words"
task = "t1"
kind = "exact"
path = "count.counts.words"
value = 3
"""


@pytest.fixture
def demo_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vmlab_home: Path) -> Path:
    labs = tmp_path / "labs"
    (labs / "demo" / "skeleton").mkdir(parents=True)
    (labs / "demo" / "lab.toml").write_text(LAB)
    (labs / "demo" / "skeleton" / "words.txt").write_text("one two three\n")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "demo_steps.py").write_text(STEPS)
    monkeypatch.setenv("VMLAB_LABS", str(labs))
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_temporary_lab_runs_end_to_end_with_its_input_and_view(demo_lab: Path) -> None:
    words = demo_lab / "mine.txt"
    words.write_text("a bb ccc dddd\n")  # 4 words; 3 of them at least 2 letters long
    out = demo_lab / "hand-in" / "report.json"
    result = run_lab(
        RunRequest(
            lab="demo",
            tasks=["t1"],
            inputs={"words": words},
            sets={"count": {"min_length": 2}},
            student="s123",
            output=out,
        )
    )
    report = load_report(out)
    assert result.exit_code == 0
    assert report.experiments["count"].counts["words"] == 3  # type: ignore[union-attr]
    assert report.steps["count"].status == "ok" and report.steps["count"].params == {"min_length": 2}
    assert report.run.student == "s123" and report.run.tasks == ["t1"] and report.run.status == "complete"
    # the input is recorded by name and hash, and its copy is what the step read
    import hashlib

    rec = report.inputs["words"]
    assert rec.name == "mine.txt" and rec.source == "student" and rec.size == 14
    assert rec.sha256 == hashlib.sha256(b"a bb ccc dddd\n").hexdigest()
    assert (out.parent / rec.artifact).read_bytes() == b"a bb ccc dddd\n"
    # the step's artifact is listed with its hash
    (art,) = report.steps["count"].artifacts
    assert art.path == "artifacts/count/words.log"
    assert hashlib.sha256((out.parent / art.path).read_bytes()).hexdigest() == art.sha256
    assert report.artifacts == [art]
    # the lab's own view renders the report
    from vmlab.labs.catalog import load_lab, view

    table = view(load_lab("demo"), "table")
    assert table is not None and table(report) == "demo view: 3 words"


def test_default_input_is_used_and_marked_default(demo_lab: Path) -> None:
    result = run_lab(RunRequest(lab="demo", tasks=["t1"], output=demo_lab / "r.json"))
    assert result.report.inputs["words"].source == "default"
    assert result.report.experiments["count"].counts["words"] == 3  # type: ignore[union-attr]


def test_the_lab_cli_group_is_registered_from_lab_toml(demo_lab: Path) -> None:
    code = "from vmlab.cli.main import app; from typer.testing import CliRunner; "
    code += "r = CliRunner().invoke(app, ['demo', 'hello']); print(r.output); raise SystemExit(r.exit_code)"
    env = {**os.environ, "PYTHONPATH": str(demo_lab / "pkg")}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 0, p.stderr
    assert "hello from the demo lab" in p.stdout


def test_a_step_that_raises_keeps_the_others(demo_lab: Path) -> None:
    result = run_lab(RunRequest(lab="demo", tasks=["t2"], output=demo_lab / "r.json"))
    report = load_report(demo_lab / "r.json")
    assert report.steps["boom"].status == "error"
    assert "the step broke on purpose" in report.steps["boom"].message
    assert report.steps["after"].status == "ok" and "after" in report.experiments
    assert report.run.status == "partial" and result.exit_code == 3


def test_set_typo_and_wrong_type_are_usage_errors_and_create_nothing(
    demo_lab: Path, vmlab_home: Path
) -> None:
    with pytest.raises(UsageError, match=r"min_lenght is not a parameter.*valid keys of count: min_length"):
        try:
            run_lab(RunRequest(lab="demo", tasks=["t1"], sets={"count": {"min_lenght": 2}}))
        except UsageError as e:
            raise UsageError(e.one_line()) from None
    with pytest.raises(UsageError, match="min_length"):
        run_lab(RunRequest(lab="demo", tasks=["t1"], sets={"count": {"min_length": "two"}}))
    with pytest.raises(UsageError, match="has no step 'cuont'"):
        run_lab(RunRequest(lab="demo", sets={"cuont": {"x": 1}}))
    with pytest.raises(UsageError, match="has no input 'wrods'"):
        run_lab(RunRequest(lab="demo", inputs={"wrods": demo_lab / "x.txt"}))
    assert not (vmlab_home / "runs").exists() or not any((vmlab_home / "runs").iterdir())


def test_cli_exit_codes_of_lab_run(demo_lab: Path) -> None:
    from vmlab.cli.main import app

    runner = CliRunner()
    ok = runner.invoke(app, ["lab", "run", "demo", "--task", "t1", "-o", "a/report.json"])
    assert ok.exit_code == 0, ok.output
    typo = runner.invoke(app, ["lab", "run", "demo", "--set", "count.nope=1"])
    assert typo.exit_code == 2 and "valid keys of count: min_length" in typo.output
    partial = runner.invoke(app, ["lab", "run", "demo", "--task", "t2", "-o", "b/report.json"])
    assert partial.exit_code == 3 and "boom: error" in partial.output


def test_step_timeout_is_an_error_and_the_run_goes_on(demo_lab: Path) -> None:
    lab = (demo_lab / "labs" / "demo" / "lab.toml").read_text().replace("timeout_s = 30", "timeout_s = 0.2")
    (demo_lab / "labs" / "demo" / "lab.toml").write_text(lab)
    result = run_lab(
        RunRequest(
            lab="demo", steps=["slow", "quick"], sets={"slow": {"seconds": 5}}, output=demo_lab / "r.json"
        )
    )
    assert result.report.steps["slow"].status == "error"
    assert "longer than its timeout of 0.2 s" in result.report.steps["slow"].message
    assert result.report.steps["quick"].status == "ok"


def test_unmet_requirement_skips_the_step_with_the_reason(
    demo_lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmlab.host import requirements

    unmet = requirements.Unmet("java", "java is not installed", "apt-get install openjdk-17-jdk-headless")
    monkeypatch.setitem(requirements.REQUIREMENTS, "java", lambda: unmet)
    lab = (demo_lab / "labs" / "demo" / "lab.toml").read_text()
    lab = lab.replace(
        '[experiments.boom]\nrunner = "demo_steps:boom"',
        '[experiments.boom]\nrunner = "demo_steps:boom"\nrequires = ["java"]',
    )
    (demo_lab / "labs" / "demo" / "lab.toml").write_text(lab)
    result = run_lab(RunRequest(lab="demo", tasks=["t2"], output=demo_lab / "r.json"))
    step = result.report.steps["boom"]
    assert step.status == "skipped" and "java is not installed" in step.message and "apt-get" in step.message
    assert result.report.steps["after"].status == "ok"


def test_no_home_directory_in_the_report(demo_lab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = demo_lab / "home" / "student"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    words = home / "words.txt"
    words.write_text("x y z\n")
    out = home / "lab" / "report.json"
    run_lab(RunRequest(lab="demo", tasks=["t1"], inputs={"words": words}, output=out))
    text = out.read_text()
    assert str(home) not in text
    # the step put the path of the input it read (beside the report, in the home) into its text
    assert json.loads(text)["experiments"]["count"]["text"].startswith("~")


def test_sigint_leaves_a_valid_partial_report(demo_lab: Path) -> None:
    out = demo_lab / "r.json"
    env = {**os.environ, "PYTHONPATH": str(demo_lab / "pkg")}
    code = "import sys; from vmlab.cli.main import main; sys.argv = ['vmlab'] + sys.argv[1:]; main()"
    argv = [sys.executable, "-c", code, "lab", "run", "demo", "--task", "t3", "--set", "slow.seconds=60"]
    proc = subprocess.Popen([*argv, "-o", str(out)], env=env, stderr=subprocess.PIPE, text=True)

    def slow_step_started() -> bool:  # the report says so
        try:
            return bool(json.loads(out.read_text())["steps"]["slow"]["started_at"])
        except (OSError, json.JSONDecodeError, KeyError):
            return False

    got = interrupt_when(proc, slow_step_started, what="the slow step starting", settle=0.2)
    assert got.sent and got.returncode == 130, got.stderr
    report = load_report(out)
    assert report.run.status == "interrupted"
    assert report.steps["quick"].status == "ok" and "quick" in report.experiments
    assert report.steps["slow"].status == "interrupted"


def test_rerun_from_a_hand_in_reads_the_input_kept_in_its_artifacts(demo_lab: Path) -> None:
    words = demo_lab / "mine.txt"
    words.write_text("w1 w2 w3 w4 w5\n")
    out = demo_lab / "hand-in" / "report.json"
    first = run_lab(RunRequest(lab="demo", tasks=["t1"], inputs={"words": words}, output=out))
    kept = out.parent / first.report.inputs["words"].artifact
    again = run_lab(RunRequest(lab="demo", tasks=["t1"], inputs={"words": kept}, output=out))
    assert again.report.experiments["count"].counts["words"] == 5  # type: ignore[union-attr]
    assert again.report.inputs["words"].sha256 == first.report.inputs["words"].sha256


def test_an_artifacts_folder_vmlab_did_not_write_is_never_wiped(demo_lab: Path) -> None:
    theirs = demo_lab / "mine" / "artifacts"
    theirs.mkdir(parents=True)
    (theirs / "thesis.tex").write_text("precious\n")
    with pytest.raises(UsageError, match="was not written by vmlab"):
        run_lab(RunRequest(lab="demo", tasks=["t1"], output=demo_lab / "mine" / "report.json"))
    assert (theirs / "thesis.tex").read_text() == "precious\n"
