"""A toy lab in a temporary VMLAB_LABS folder, run for real through the pipeline, so class grading is
tested on genuine reports (inputs, artifacts, lab hash, steps, checks) without /dev/kvm or Docker.

The toy mirrors kvm-api's task `own`: the student's program must print its line (`ok`) with at most 3
`out` lines (exits); the skeleton prints the line with 5, so it fails the budget honestly, as kvm-api's
skeleton does. Task t2 times a loop of random length (raw samples that differ between honest runs).
`[rerun]` re-runs the program with a hook that needs no container: it passes when the recorded program
has an `out` line.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

STEPS = '''
"""Step runners of the toy lab."""
from __future__ import annotations

import random
import time

from vmlab.labs.step import NoParams, StepContext
from vmlab.report.model import Experiment
from vmlab.report.stats import summarize


def count(params: NoParams, ctx: StepContext) -> dict:
    lines = [x.split(";")[0].strip() for x in ctx.inputs["program"].read_text().splitlines()]
    code = [x for x in lines if x]
    outs = sum(1 for x in code if x.startswith("out"))
    ok = "print" in code
    return {"count": Experiment(unit="lines", counts={"outs": outs, "lines": len(code)}, values={"ok": ok})}


def timing(params: NoParams, ctx: StepContext) -> dict:
    samples = []
    for _ in range(32):  # enough samples (31 degrees of freedom) to tell a jittered copy
        # a loop of random length: samples spread by ~30 % as a guest's boot times do, and differ
        # between honest runs (a fixed loop varies by ~1 %, too little to tell a copy nudged by 1 %)
        n = random.randint(10000, 30000)
        t0 = time.perf_counter_ns()
        sum(range(n))
        samples.append(float(time.perf_counter_ns() - t0))
    return {"time": Experiment(unit="ns", samples=samples, summary=summarize(samples))}


def rerun(ctx):
    text = ctx.inputs["program"].read_text()
    return [ctx.check("hidden", "out" in text, "" if "out" in text else "no out line", claimed=True)]
'''

LAB = """
[lab]
name = "toy"
title = "A toy lab for grading tests"

[inputs.program]
kind = "file"
default = "skeleton/prog.asm"

[[tasks]]
id = "t1"
title = "print the line with at most 3 exits"
experiments = ["count"]

[[tasks]]
id = "t2"
title = "time a loop"
experiments = ["time"]

[experiments.count]
runner = "toy_steps:count"
inputs = ["program"]

[experiments.time]
runner = "toy_steps:timing"

[[checks]]
id = "ok"
task = "t1"
kind = "exact"
path = "count.values.ok"
value = true
points = 2

[[checks]]
id = "budget"
task = "t1"
kind = "range"
path = "count.counts.outs"
lo = 1
hi = 3
points = 2

[[checks]]
id = "timed"
task = "t2"
kind = "present"
path = "time"

[rerun]
task = "t1"
hook = "toy_steps:rerun"
inputs = ["program"]
"""

SKELETON = "; prints the line, one exit per byte\nout\nout\nout\nout\nout\nprint\nhlt\n"
SOLUTION = "; the whole line in one exit\nmov si, line\nout ; one exit\nprint\nhlt\n"


@dataclass
class Toy:
    root: Path
    lab_dir: Path

    def run(
        self,
        student: str | None,
        program: str | None = SOLUTION,
        tasks: list[str] | None = None,
        extra: dict[str, Path] | None = None,
    ) -> Path:
        """A real run of the toy lab, as the student's own machine makes it; returns report.json."""
        from vmlab.labs.pipeline import RunRequest, run_lab

        out = self.root / "runs" / f"{student}-{len(list((self.root / 'runs').glob('*')))}"
        inputs = dict(extra or {})
        if program is not None:
            src = self.root / "src" / f"{out.name}.asm"
            src.parent.mkdir(parents=True, exist_ok=True)
            # each student writes their own copy (the skeleton stays as handed out)
            src.write_text(program if program == SKELETON else f"{program}; written by {student}\n")
            inputs["program"] = src
        report = out / "report.json"
        run_lab(RunRequest(lab="toy", student=student, output=report, inputs=inputs, tasks=tasks))
        # and the verdict written back, as `vmlab lab run` does (vmlab.cli.check, write_back)
        from vmlab.check.grader import grade_report
        from vmlab.labs.catalog import load_lab
        from vmlab.report.io import load_report, save_report

        r = load_report(report)
        results, grade = grade_report(r, load_lab("toy"), report_dir=out, tasks=r.run.tasks)
        save_report(r.model_copy(update={"checks": results, "grade": grade}), report)
        return report

    def hand_in(self, report: Path, folder: str, cls: str = "class") -> Path:
        """report.json with its artifacts/ as `<cls>/<folder>/`, the way a student uploads it."""
        dest = self.root / cls / folder
        dest.mkdir(parents=True)
        shutil.copy(report, dest / "report.json")
        if (report.parent / "artifacts").is_dir():
            shutil.copytree(report.parent / "artifacts", dest / "artifacts")
        return dest / "report.json"

    def edit(self, report: Path, change: Callable[[dict[str, Any]], None]) -> None:
        data = json.loads(report.read_text())
        change(data)
        report.write_text(json.dumps(data, indent=2))


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vmlab_home: Path) -> Toy:
    labs = tmp_path / "labs"
    (labs / "toy" / "skeleton").mkdir(parents=True)
    (labs / "toy" / "lab.toml").write_text(LAB)
    (labs / "toy" / "skeleton" / "prog.asm").write_text(SKELETON)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "toy_steps.py").write_text(STEPS)
    (tmp_path / "runs").mkdir()
    monkeypatch.setenv("VMLAB_LABS", str(labs))
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.chdir(tmp_path)
    return Toy(root=tmp_path, lab_dir=labs / "toy")
