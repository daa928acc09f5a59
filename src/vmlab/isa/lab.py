"""Step runners of labs/isa-emulation.

Report layout: one experiment group per engine, keyed by scenario: `switch.S4` is the switch engine on
scenario 4, with `values.outcome` ("A=138 instructions=21516018", what the exact checks compare),
`counts` (A, L, instructions, blocks_translated, chainings, ...), the wall-time samples and, for
translators, `stages.translate` / `stages.execute`.

The `candidate` step runs the engine under test in a child process with a timeout: the student's file
given as `vmlab lab run isa-emulation --engine-module FILE`, otherwise vmlab's reference interpreter,
so the lab passes out of the box and the same checks grade a student's engine when one is given.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from vmlab.errors import UsageError
from vmlab.isa.bench import Run, failed_experiment, run_matrix, to_experiment
from vmlab.isa.engines import ENGINES
from vmlab.isa.gen import SCENARIOS, scenario
from vmlab.isa.machine import Result
from vmlab.labs.runner import RunContext
from vmlab.report.model import ExperimentEntry


def _scenarios(params: dict[str, Any]) -> list[int]:
    raw = params.get("scenarios", [1, 2, 3, 4])
    if not isinstance(raw, list) or not raw:
        raise UsageError(f"scenarios must be a non-empty list like [1, 2, 3, 4], got {raw!r}")
    out = []
    for x in raw:
        if not isinstance(x, int) or isinstance(x, bool):
            raise UsageError(f"scenario {x!r} is not a number (known: {', '.join(map(str, SCENARIOS))})")
        out.append(scenario(x).number)
    return out


def _repeats(params: dict[str, Any]) -> dict[int, int]:
    """repeats = 3 (every scenario) or {S3 = 5, S4 = 3} (others 1)."""
    raw = params.get("repeats", 1)
    if isinstance(raw, int) and not isinstance(raw, bool):
        table = {n: raw for n in SCENARIOS}
    elif isinstance(raw, dict):
        table = {n: 1 for n in SCENARIOS}
        for key, value in raw.items():
            n = int(str(key).lstrip("Ss")) if str(key).lstrip("Ss").isdigit() else -1
            if n not in SCENARIOS or not isinstance(value, int):
                raise UsageError(
                    f"repeats: {key!r} = {value!r} is not SCENARIO = COUNT", hint="repeats = {S4 = 3}"
                )
            table[n] = value
    else:
        raise UsageError(f"repeats must be a number or a table like {{S4 = 3}}, got {raw!r}")
    if any(v < 1 for v in table.values()):
        raise UsageError("repeats must be at least 1")
    return table


def engine(params: dict[str, Any], ctx: RunContext) -> dict[str, ExperimentEntry]:
    """One built-in engine on the scenarios: the group `<engine>.S<n>`."""
    name = params.get("engine", ctx.step_id)
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}", hint=f"choose from {', '.join(ENGINES)}")
    if name == "x86":
        from vmlab.isa.engines.x86 import unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            ctx.progress(f"x86 skipped: {reason}")
            return {}
    matrix = run_matrix([name], _scenarios(params), _repeats(params), progress=ctx.progress)
    return dict(matrix.items())


def candidate(params: dict[str, Any], ctx: RunContext) -> dict[str, ExperimentEntry]:
    """The engine under test (a student's file, else the reference interpreter), one child per scenario."""
    path = ctx.options.get("engine_module")
    timeout = float(params.get("timeout", 120))
    repeats = _repeats(params)
    who = ["--engine-file", str(path)] if path else ["--engine", "reference"]
    label = str(path) if path else "builtin:reference"
    group: dict[str, Any] = {}
    for n in _scenarios(params):
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
