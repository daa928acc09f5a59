"""Measure engines on programs: wall time from the loaded byte array to HALT, translation included.

Each repeat runs the engine from scratch (fresh translation cache), with the cyclic garbage collector
paused as timeit does, so a collection that happens to fall into one run does not decide a ratio.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vmlab.errors import UsageError
from vmlab.isa.gen import SCENARIOS, Scenario, scenario_program
from vmlab.isa.machine import Program, Result
from vmlab.isa.registry import Engine, as_result, bind_params, get_engine
from vmlab.report.model import Experiment, Measurement, Provenance
from vmlab.report.stats import summarize


@dataclass
class Run:
    """All repeats of one engine on one program."""

    engine: str
    program: str
    samples: list[float]
    result: Result
    translate_samples: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def ns_per_instruction(self) -> float:
        return self.median / self.result.executed * 1e9 if self.result.executed else 0.0


def time_engine(engine: Engine, program: Program, repeats: int, name: str = "") -> Run:
    if repeats < 1:
        raise UsageError(f"repeats must be at least 1, got {repeats}")
    samples: list[float] = []
    translate: list[float] = []
    result: Result | None = None
    for _ in range(repeats):
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            t0 = time.perf_counter()
            raw = engine(program.code, program.a, program.l)
            samples.append(time.perf_counter() - t0)
        finally:
            if gc_was_on:
                gc.enable()
        result = as_result(raw, name or "engine")
        if "translate_ns" in result.stats:
            translate.append(result.stats["translate_ns"] / 1e9)
    assert result is not None
    return Run(engine=name, program=program.name, samples=samples, result=result, translate_samples=translate)


def outcome(a: int, executed: int) -> str:
    """The string the lab's exact checks compare: final A and executed instructions together."""
    return f"A={a} instructions={executed}"


def to_experiment(run: Run, scenario: Scenario | None = None, provider: str = "builtin") -> Experiment:
    """One engine on one program as a report experiment; `values.outcome` is what the oracle checks read."""
    r = run.result
    counts = {"A": r.a, "L": r.l, "instructions": r.executed, **r.stats}
    values: dict[str, float | int | str | bool | None] = {
        "outcome": outcome(r.a, r.executed),
        "engine": run.engine,
        "ns_per_instruction": round(run.ns_per_instruction, 3),
    }
    stages: dict[str, Measurement] = {}
    if run.translate_samples:
        stages["translate"] = Measurement(
            unit="s", samples=run.translate_samples, summary=summarize(run.translate_samples)
        )
        execute = [max(0.0, w - t) for w, t in zip(run.samples, run.translate_samples, strict=True)]
        stages["execute"] = Measurement(unit="s", samples=execute, summary=summarize(execute))
    notes = []
    if scenario is not None:
        values["oracle"] = outcome(scenario.final_a, scenario.executed)
        values["matches_oracle"] = (r.a, r.executed) == (scenario.final_a, scenario.executed)
        notes.append(
            f"{scenario.name}: size {scenario.size}, seed {scenario.seed}, "
            f"probabilities {'/'.join(map(str, scenario.probs))}"
        )
    return Experiment(
        unit="s",
        samples=run.samples,
        summary=summarize(run.samples),
        provenance=Provenance(backend="python", counter_source="engine", notes=notes),
        provider=provider,
        stages=stages,
        counts=counts,
        values=values,
    )


def failed_experiment(engine: str, error: str, scenario: Scenario | None) -> Experiment:
    """A run that raised or timed out: no figures, the error where the checks will show it."""
    values: dict[str, float | int | str | bool | None] = {
        "engine": engine,
        "error": error,
        "outcome": f"error: {error}",
    }
    if scenario is not None:
        values["oracle"] = outcome(scenario.final_a, scenario.executed)
        values["matches_oracle"] = False
    return Experiment(unit="s", provider="candidate", values=values)


def run_matrix(
    engines: Sequence[str],
    scenarios: Sequence[int],
    repeats: int | Mapping[int, int] = 1,
    progress: Callable[[str], None] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Experiment]]:
    """Every engine on every scenario: {engine: {"S1": experiment, ...}}; `params` per engine name."""
    programs = {n: scenario_program(n) for n in scenarios}
    out: dict[str, dict[str, Experiment]] = {}
    for name in engines:
        engine = bind_params(get_engine(name), dict((params or {}).get(name, {})), f"engine {name!r}")
        group: dict[str, Experiment] = {}
        for n in scenarios:
            reps = repeats if isinstance(repeats, int) else repeats.get(n, 1)
            if progress is not None:
                progress(f"{name} on S{n} ({reps} run{'s' if reps > 1 else ''})")
            run = time_engine(engine, programs[n], reps, name)
            group[f"S{n}"] = to_experiment(run, SCENARIOS[n])
        out[name] = group
    return out


def speedups(
    matrix: Mapping[str, Mapping[str, Experiment]], base: str = "switch"
) -> dict[str, dict[str, float]]:
    """Median time of `base` over each engine's, per scenario (only where both ran)."""
    out: dict[str, dict[str, float]] = {}
    if base not in matrix:
        return out
    for name, group in matrix.items():
        for scen, exp in group.items():
            b = matrix[base].get(scen)
            if exp.summary is not None and b is not None and b.summary is not None and exp.summary.median > 0:
                out.setdefault(name, {})[scen] = b.summary.median / exp.summary.median
    return out


def plot_ns_per_instruction(matrix: Mapping[str, Mapping[str, Experiment]], path: str) -> None:
    """Grouped bars: ns per guest instruction, one group per scenario, one bar per engine (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = list(matrix)
    scenarios = sorted({s for g in matrix.values() for s in g}, key=lambda s: int(s[1:]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(scenarios) * max(1, len(engines)) / 3), 4.5))
    width = 0.8 / max(1, len(engines))
    for i, name in enumerate(engines):
        xs, ys = [], []
        for j, s in enumerate(scenarios):
            exp = matrix[name].get(s)
            v = exp.values.get("ns_per_instruction") if exp is not None else None
            if isinstance(v, int | float) and v > 0:
                xs.append(j + (i - (len(engines) - 1) / 2) * width)
                ys.append(float(v))
        ax.bar(xs, ys, width=width, label=name)
    ax.set_xticks(range(len(scenarios)), scenarios)
    ax.set_yscale("log")
    ax.set_ylabel("ns per guest instruction (median, translation included)")
    ax.set_title("ISA emulation: cost per guest instruction")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# the reference engines' parameters as the lab ran them before they left it (the tutors' demonstration)
BENCH_PARAMS: dict[str, dict[str, Any]] = {
    "bt-tiered": {"threshold": 8, "hot": 16, "unroll": 4},
    "x86": {"threshold": 2},
}


def x86_unavailable() -> str | None:
    """Why the x86 engine cannot run here (PROT_EXEC refused, not x86-64), asked through the registry."""
    import importlib

    from vmlab.isa.registry import ENGINES

    get_engine("x86")
    reason: str | None = importlib.import_module(ENGINES["x86"]).unavailable_reason()
    return reason


def bench_report(
    engines: Sequence[str],
    scenarios: Sequence[int],
    repeats: int,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Any, dict[str, str]]:
    """(a report of vmlab's reference engines on the scenarios, {engine: why it was not measured}).

    The engines are the tutors' part (the tasks' answers), no step of the isa-emulation lab: the report
    names that lab but records no lab hash, no steps and no tasks, so `vmlab check` grades nothing of a
    student's in it. A course shows the engines with it (`vmlab isa bench`) where vmlab.isa.engines is.
    """
    import datetime as dt

    from vmlab import __version__
    from vmlab.host.fingerprint import host_info
    from vmlab.paths import new_run_id
    from vmlab.report.model import Report, RunInfo

    skipped: dict[str, str] = {}
    names = list(engines)
    if "x86" in names:
        reason = x86_unavailable()
        if reason is not None:
            skipped["x86"] = reason
            names.remove("x86")
    merged = {n: {**BENCH_PARAMS.get(n, {}), **dict((params or {}).get(n, {}))} for n in names}
    started = dt.datetime.now(dt.UTC)
    matrix = run_matrix(names, scenarios, repeats, progress=progress, params=merged)
    report = Report(
        vmlab_version=__version__,
        lab="isa-emulation",
        run_id=new_run_id(),
        created_at=started,
        host=host_info(()),
        run=RunInfo(lab_sha256="", status="complete", finished_at=dt.datetime.now(dt.UTC)),
        params={"bench": {"scenarios": list(scenarios), "repeats": repeats, "engine_params": merged}},
        experiments={n: dict(g) for n, g in matrix.items()},
    )
    return report, skipped
