"""Step runners of labs/isa-emulation.

Report layout: one experiment group per engine, keyed by scenario: `switch.S4` is the switch engine on
scenario 4, with `values.outcome` ("A=138 instructions=21516018", what the exact checks compare),
`counts` (A, L, instructions, blocks_translated, chainings, ...), the wall-time samples and, for
translators, `stages.translate` / `stages.execute`.

The `candidate` step runs the engine under test in a child process with a timeout: the student's file
given as `vmlab lab run isa-emulation --input engine=FILE`, otherwise vmlab's reference interpreter,
so the lab passes out of the box and the same checks grade a student's engine when one is given.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from pydantic import Field, field_validator

from vmlab.errors import UsageError
from vmlab.isa.bench import Run, failed_experiment, run_matrix, to_experiment
from vmlab.isa.engines import ENGINES
from vmlab.isa.gen import SCENARIOS
from vmlab.isa.machine import Result
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import ExperimentEntry


class EngineParams(StepParams):
    """`repeats` is one count for every scenario or a table like {S4 = 3} (the others run once)."""

    engine: str | None = None
    scenarios: list[int] = Field(default_factory=lambda: [1, 2, 3, 4], min_length=1)
    repeats: int | dict[str, int] = 1

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


class CandidateParams(EngineParams):
    timeout: float = Field(120.0, gt=0)


def engine(params: EngineParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """One built-in engine on the scenarios: the group `<engine>.S<n>`."""
    name = params.engine or ctx.step_id
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}", hint=f"choose from {', '.join(ENGINES)}")
    if name == "x86":
        from vmlab.isa.engines.x86 import unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            ctx.progress(f"x86 skipped: {reason}")
            return {}
    matrix = run_matrix([name], params.scenarios, params.repeat_table(), progress=ctx.progress)
    return dict(matrix.items())


def candidate(params: CandidateParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """The engine under test (the student's `engine` input, else the reference interpreter).

    Runs the recorded copy of the student's file, one child process per scenario.
    """
    path = ctx.inputs.get("engine")
    timeout = params.timeout
    repeats = params.repeat_table()
    who = ["--engine-file", str(path)] if path else ["--engine", "reference"]
    label = f"student:{path.name}" if path else "builtin:reference"
    group: dict[str, Any] = {}
    for n in params.scenarios:
        s = SCENARIOS[n]
        ctx.progress(f"candidate ({label}) on S{n}")
        argv = [
            sys.executable,
            "-m",
            "vmlab.isa.worker",
            *who,
            "--scenario",
            str(n),
            "--repeats",
            str(repeats[n]),
        ]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            group[s.name] = failed_experiment(label, f"no HALT within {timeout:g} s (an endless loop?)", s)
            continue
        try:
            data = json.loads(proc.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            group[s.name] = failed_experiment(label, f"worker exited {proc.returncode}: {tail[:200]}", s)
            continue
        if "error" in data:
            group[s.name] = failed_experiment(label, str(data["error"]), s)
            continue
        stats = {
            k: int(v)
            for k, v in (data.get("stats") or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        result = Result(a=int(data["a"]), l=int(data["l"]), executed=int(data["executed"]), stats=stats)
        run = Run(
            engine=label,
            program=s.name,
            samples=[float(x) for x in data["samples"]],
            result=result,
            translate_samples=[float(x) for x in data.get("translate_samples", [])],
        )
        group[s.name] = to_experiment(run, s, provider="candidate")
    return {ctx.step_id: group}
