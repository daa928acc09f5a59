"""Step runners of labs/isa-emulation.

Report layout: one experiment group per step, keyed by scenario: `t3.S4` is the student's task-3
engine on scenario 4, `oracle.S3` the reference interpreter (the speed baseline) on scenario 3, with
`values.outcome` ("A=138 instructions=21516018", what the exact checks compare), `counts` (A, L,
instructions and whatever the engine reports: blocks_translated, chainings, superblocks, ...) and the
wall-time samples.

A task step (`t1` .. `t6`) runs the student's file for that task, given as
`vmlab lab run isa-emulation --input t3=my_super.py`, in a child process with a timeout; without it the
input's default, the task's skeleton, which fails until the student writes it. vmlab's reference engine
never stands in for a task: with no file at all (a lab.toml declaring no default) the step records a
failed run per scenario, so the task's checks fail closed instead of passing on vmlab's own answer.
`values.engine` says whose engine ran ("student:my_super.py").
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from typing import Any

from pydantic import Field, field_validator

from vmlab.errors import UsageError
from vmlab.isa.bench import Run, failed_experiment, run_matrix, to_experiment, x86_unavailable
from vmlab.isa.gen import SCENARIOS, Scenario
from vmlab.isa.machine import Program, Result
from vmlab.isa.registry import ENGINES
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry

ParamValue = int | float | bool | str


class EngineParams(StepParams):
    """`repeats` is one count for every scenario or a table like {S4 = 3} (the others run once);
    `engine_params` are the engine's keyword parameters (hot, unroll, threshold, ...)."""

    engine: str | None = None
    scenarios: list[int] = Field(default_factory=lambda: [1, 2, 3, 4], min_length=1)
    repeats: int | dict[str, int] = 1
    engine_params: dict[str, ParamValue] = Field(default_factory=dict)
    # the student's own program SV (vmlab.isa.gen.variant_scenario), run once after the scenarios
    variant_seed: int | None = Field(None, ge=1)
    variant_size: int = Field(4000, ge=16, le=100_000)

    @field_validator("scenarios")
    @classmethod
    def _known_scenarios(cls, v: list[int]) -> list[int]:
        for x in v:
            if x not in SCENARIOS:
                raise ValueError(f"scenario {x} is unknown (known: {', '.join(map(str, SCENARIOS))})")
        return v

    @field_validator("repeats")
    @classmethod
    def _repeat_table(cls, v: int | dict[str, int]) -> int | dict[str, int]:
        counts = [v] if isinstance(v, int) else list(v.values())
        if isinstance(v, dict):
            for key in v:
                digits = key.lstrip("Ss")
                if not digits.isdigit() or int(digits) not in SCENARIOS:
                    raise ValueError(f"{key!r} is not a scenario such as S4")
        if any(c < 1 for c in counts):
            raise ValueError("repeats must be at least 1")
        return v

    def repeat_table(self) -> dict[int, int]:
        if isinstance(self.repeats, int):
            return {n: self.repeats for n in SCENARIOS}
        table = {n: 1 for n in SCENARIOS}
        table.update({int(k.lstrip("Ss")): c for k, c in self.repeats.items()})
        return table


class TaskParams(EngineParams):
    """A task's engine in a child process: `timeout` per scenario, `diagnose` seconds to bisect for
    the first diverging instruction when an outcome is wrong (0: off)."""

    task: str = Field(pattern=r"^t[1-6]$")
    timeout: float = Field(120.0, gt=0)
    diagnose: float = Field(20.0, ge=0)


class CandidateParams(EngineParams):
    timeout: float = Field(120.0, gt=0)


def engine(params: EngineParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """One of vmlab's reference engines on the scenarios: the group `<engine>.S<n>`. No step of the
    shipped lab uses it (the engines are the tasks' answers, see `vmlab isa bench`); a tutors' copy of
    lab.toml may, and in a student kit it says the engine is not installed."""
    name = params.engine or ctx.step_id
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}", hint=f"choose from {', '.join(ENGINES)}")
    if name == "x86":
        reason = x86_unavailable()
        if reason is not None:
            ctx.progress(f"x86 skipped: {reason}")
            return {}
    matrix = run_matrix(
        [name],
        params.scenarios,
        params.repeat_table(),
        progress=ctx.progress,
        params={name: dict(params.engine_params)},
    )
    return {ctx.step_id: dict(matrix[name])}


def task(params: TaskParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """The student's engine for one task (input `t<n>`: their file, else the skeleton by default).

    Without any file no engine runs: each scenario is a failed run naming the missing input, so the
    task's checks fail closed rather than pass on vmlab's reference engine.
    """
    path = ctx.inputs.get(params.task)
    if path is None:
        why = f"no engine of yours for task {params.task}: give --input {params.task}=FILE"
        ctx.progress(f"{ctx.step_id}: {why}")
        label = f"missing:{params.task}"
        return {
            ctx.step_id: {
                SCENARIOS[n].name: failed_experiment(label, why, SCENARIOS[n]) for n in params.scenarios
            }
        }
    who, label = ["--engine-file", str(path)], f"student:{path.name}"
    return {ctx.step_id: _child_runs(who, label, params, params.timeout, params.diagnose, ctx)}


def candidate(params: CandidateParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Any engine file (input `engine`), else the oracle (the reference interpreter): the lab's
    `oracle` step, the speed baseline a kit can run, since the oracle is no task's answer."""
    path = ctx.inputs.get("engine")
    who = ["--engine-file", str(path)] if path else ["--engine", "reference"]
    label = f"student:{path.name}" if path else "builtin:reference"
    return {ctx.step_id: _child_runs(who, label, params, params.timeout, 0.0, ctx)}


def _child_runs(
    who: list[str], label: str, params: EngineParams, timeout: float, diagnose: float, ctx: StepContext
) -> dict[str, Experiment]:
    """One child process per scenario (python -m vmlab.isa.worker), its JSON line turned into data."""
    repeats = params.repeat_table()
    extra = [f"--param={k}={json.dumps(v)}" for k, v in params.engine_params.items()]
    group: dict[str, Experiment] = {}
    for n in params.scenarios:
        s = SCENARIOS[n]
        ctx.progress(f"{ctx.step_id} ({label}) on S{n}")
        argv = [sys.executable, "-m", "vmlab.isa.worker", *who, "--scenario", str(n)]
        argv += ["--repeats", str(repeats[n]), *extra]
        if diagnose > 0:
            argv += ["--diagnose", str(diagnose)]
        group[s.name] = run_child(argv, label, s, timeout + diagnose)
    if params.variant_seed is not None:
        s, prog = _variant_program(params.variant_size, params.variant_seed)
        ctx.progress(f"{ctx.step_id} ({label}) on SV, your variant's program (seed {s.seed})")
        path = ctx.scratch / f"{ctx.step_id}-SV.bin"
        path.write_bytes(prog.code)
        argv = [sys.executable, "-m", "vmlab.isa.worker", *who, "--program", str(path)]
        argv += ["--a", str(prog.a), "--l", str(prog.l), *extra]
        if diagnose > 0:
            argv += ["--diagnose", str(diagnose)]
        try:
            group[s.name] = run_child(argv, label, s, timeout + diagnose)
        finally:
            path.unlink(missing_ok=True)
    return group


@functools.cache
def _variant_program(size: int, seed: int) -> tuple[Scenario, Program]:
    """Computed once per process: every step of a run meets the same program and oracle."""
    from vmlab.isa.gen import variant_scenario

    return variant_scenario(size, seed)


def run_child(argv: list[str], label: str, s: Scenario | None, timeout: float) -> Experiment:
    """Run the worker; whatever goes wrong (a raise, an endless loop, garbage) becomes one line."""
    data = call_worker(argv, timeout)
    if "error" in data:
        return failed_experiment(label, str(data["error"]), s)
    stats = {
        k: int(v)
        for k, v in (data.get("stats") or {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    result = Result(a=int(data["a"]), l=int(data["l"]), executed=int(data["executed"]), stats=stats)
    run = Run(
        engine=label,
        program=s.name if s else "",
        samples=[float(x) for x in data["samples"]],
        result=result,
        translate_samples=[float(x) for x in data.get("translate_samples", [])],
    )
    exp = to_experiment(run, s, provider="candidate")
    if data.get("divergence") and not exp.values.get("matches_oracle"):
        # the exact oracle check prints `outcome` when it fails: let it name where the engine went wrong
        exp.values["outcome"] = f"{exp.values['outcome']}; {data['divergence']}"
        exp.values["divergence"] = str(data["divergence"])
    if data.get("params"):
        exp.values["engine_params"] = json.dumps(data["params"], sort_keys=True)
    return exp


def call_worker(argv: list[str], timeout: float) -> dict[str, Any]:
    """The worker's JSON line, or {"error": one line, "error_kind": ...} when there is none."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {
            "error": f"no result within {timeout:g} s (an endless loop in the engine or the program?)",
            "error_kind": "timeout",
        }
    lines = proc.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1])
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except (ValueError, IndexError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"worker exited {proc.returncode}: {tail[:200]}", "error_kind": "engine"}
    return data
