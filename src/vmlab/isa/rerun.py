"""Tutors' re-run of a student's engine on hidden programs (`vmlab grade --rerun`, lab.toml `[rerun]`).

Two halves, so the container needs nothing but vmlab:
- `rerun(ctx)` (here) runs on the grading host: it derives hidden programs from the tutor's secret and the
  student id (generator seed, size and opcode probabilities), computes their oracle with the reference
  interpreter, runs the recorded engine in the sandbox and grades what comes back;
- `main()` of vmlab.isa.rerun_inside runs inside the container (`python -m vmlab.isa.rerun_inside`): it
  loads the engine, runs it on the programs it is given and prints one JSON line. It knows no oracle,
  so faking its output gains nothing.

Each task engine the student handed in (inputs t1..t6) is re-run; per engine tN the checks are
`rerun:uses-reference[tN]` (the engine imports none of the lab's `[rerun] solutions`: vmlab's reference
engines, their registry, the reference interpreter; a claim check, so failing it zeroes the score),
`rerun:hidden-<k>[tN]` (final A and executed instructions equal the reference interpreter's),
`rerun:claims[tN]` (the engine gives today the outcomes its report claims on the public scenarios) and
`rerun:speed[tN]` (its speed relative to the oracle, the reference interpreter that the lab's `oracle`
step times, measured side by side in the container, agrees with the report's within the lab's
tolerance: timing, reported, never scored).

The image holds none of the solutions, and the container refuses their import before the engine loads.
The baseline the speed check needs (the reference interpreter) is solution material too, so it never
shares a container with the graded results: a first container runs the engine on the hidden programs
and public scenarios with no baseline anywhere; only then a second one gets the baseline's source as an
input file, loads it under a private name after the engine, and times the two. The host reads nothing
but timings from the second.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from vmlab.grade.rerun import RerunContext
    from vmlab.isa.machine import Program
    from vmlab.report.model import CheckResult


class RerunParams(BaseModel):
    """lab.toml `[rerun] params`: how many hidden programs, their size range and instruction budget."""

    model_config = ConfigDict(extra="forbid")
    programs: int = Field(2, ge=1, le=10)
    min_size: int = Field(500, ge=8)
    max_size: int = Field(5000, ge=8)
    max_instructions: int = Field(400_000, ge=1000)
    timing_scenario: int = 3
    repeats: int = Field(3, ge=1)


def hidden_program(raw: bytes, p: RerunParams) -> tuple[int, int, tuple[int, int, int, int, int]]:
    """(seed, size, probabilities) from 16 derived bytes; the probabilities always satisfy the generator."""
    seed = int.from_bytes(raw[0:4], "little") & 0x7FFFFFFF
    size = p.min_size + int.from_bytes(raw[4:8], "little") % (p.max_size - p.min_size + 1)
    probs = [raw[8 + i] % 10 for i in range(5)]
    if probs[0] + probs[1] + probs[2] == 0:
        probs[1] = 1 + raw[13] % 9  # BACK7 and SETL alone cannot make a program (gen.check_params)
    return seed, size, (probs[0], probs[1], probs[2], probs[3], probs[4])


def hidden_programs(ctx: RerunContext, p: RerunParams) -> list[tuple[Program, tuple[int, int]]]:
    """Programs with their oracle (final A, executed); one that would run past the budget is redrawn."""
    from vmlab.isa.gen import generate
    from vmlab.isa.reference import BudgetExceeded, run_reference

    out = []
    for k in range(1, p.programs + 1):
        for attempt in range(100):
            seed, size, probs = hidden_program(ctx.derive(f"program-{k}-{attempt}", 16), p)
            prog = generate(size, seed, probs)
            try:
                r = run_reference(prog, max_instructions=p.max_instructions)
            except BudgetExceeded:
                continue
            out.append((prog, (r.a, r.executed)))
            break
    return out


def _oracle(n: int) -> str | None:
    from vmlab.isa.gen import SCENARIOS

    s = SCENARIOS.get(n)
    return None if s is None else f"A={s.final_a} instructions={s.executed}"


def _outcome(report_node: Any) -> str | None:
    values = getattr(report_node, "values", None) or {}
    got = values.get("outcome")
    return got if isinstance(got, str) else None


def rerun(ctx: RerunContext) -> list[CheckResult]:
    """Every task engine the student handed in (inputs t1..t6), on the same hidden programs."""
    p = RerunParams.model_validate(ctx.spec.params)
    programs = hidden_programs(ctx, p)
    checks: list[CheckResult] = []
    for name in sorted(ctx.inputs):
        checks += _rerun_engine(ctx, p, programs, name)
    return checks


def _task_of(ctx: RerunContext, step: str) -> str | None:
    return next((t.id for t in ctx.lab.tasks if step in t.experiments), None)


BASELINE = "vmlab.isa.reference"  # its run(code, a, l), timed as the lab's `oracle` step
BASELINE_STEP = "oracle"
_WHAT = {
    "vmlab.isa.engines": "one of vmlab's reference engines",
    "vmlab.isa.registry": "vmlab's engine registry, which loads the reference engines",
    "vmlab.isa.reference": "vmlab's reference interpreter, the hidden checks' oracle",
}


def _what(module: str) -> str:
    """How a refused module is named to the student: what it is, not just where."""
    if module == "vmlab.isa.engines":
        return "vmlab's reference engines"
    hit = max((k for k in _WHAT if module == k or module.startswith(k + ".")), key=len, default=None)
    return _WHAT[hit] if hit else "part of vmlab's own solution"


def uses_reference_message(step: str, refused: list[str]) -> str:
    """'t1 imports vmlab.isa.engines.switch, one of vmlab's reference engines: the re-run grades ...'"""
    named = "; ".join(f"{m}, {_what(m)}" for m in refused)
    return f"{step} imports {named}: the re-run grades your own code"


def _baseline_source() -> bytes | None:
    """The baseline's source on this grading host, or None where it is not installed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(BASELINE)
    except ImportError:
        return None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return None
    return Path(spec.origin).read_bytes()


def _refused(data: dict[str, Any]) -> list[str]:
    got = data.get("uses_reference")
    return [str(m) for m in got] if isinstance(got, list) else []


def _rerun_engine(
    ctx: RerunContext, p: RerunParams, programs: list[tuple[Program, tuple[int, int]]], step: str
) -> list[CheckResult]:
    """One task's engine: its step `step` produced the group the report claims (step id == input name)."""
    task = _task_of(ctx, step)

    def check(check_id: str, ok: bool | None, message: str = "", **fields: Any) -> CheckResult:
        return ctx.check(f"{check_id}[{step}]", ok, message, task=task, **fields)

    group = ctx.report.experiments.get(step)
    claimed = {name: _outcome(exp) for name, exp in group.items()} if isinstance(group, dict) else {}
    public = sorted(int(n[1:]) for n, o in claimed.items() if o is not None and n[1:].isdigit())
    # the report claims a working engine when every public scenario it ran matches the oracle
    works = bool(public) and all(claimed[f"S{n}"] == _oracle(n) for n in public)
    engine = ctx.inputs[step].read_bytes()
    solutions = list(ctx.spec.solutions)
    spec = {
        "solutions": solutions,
        "hidden": [{"code": prog.code.hex(), "a": prog.a, "l": prog.l} for prog, _ in programs],
        "public": public,
    }
    ctx.progress(
        f"{ctx.student}: {step} on {len(programs)} hidden programs and {len(public)} public scenarios"
    )
    res = ctx.run(
        ["-m", "vmlab.isa.rerun_inside", "--engine", "/in/engine.py", "--spec", "/in/spec.json"],
        {"engine.py": engine, "spec.json": json.dumps(spec).encode()},
    )
    if res.timed_out:
        msg = f"the engine gave no result within {ctx.spec.timeout_s:g} s (an endless loop?)"
        return [check("hidden", False, msg, expected="a result for every hidden program")]
    data = res.result_json()
    if data is None:
        msg = f"the container exited {res.rc} without a result: {res.stderr_tail()}"
        return [check("hidden", None, msg)]
    refused = _refused(data)
    unloaded = str(data["error"])[:200] if "error" in data else None  # the student's fault, not timed
    timing: dict[str, Any] = {}
    timing_note = "no timings came back from the container"
    if not refused and unloaded is None:  # the baseline goes only to a timing-only container, only now
        timing, timing_note, late = _timing_run(ctx, p, engine, solutions)
        refused += [m for m in late if m not in refused]

    checks: list[CheckResult] = [
        check(
            "uses-reference",
            not refused,
            uses_reference_message(step, refused) if refused else "",
            claimed=True,
            measured=", ".join(refused) or "none",
            expected=f"no import of vmlab's solution modules ({', '.join(solutions) or 'none declared'})",
            description=f"your {step} engine is your own code, not one of vmlab's reference engines",
        )
    ]
    got_hidden = data.get("hidden") or []
    for k, ((prog, (a, executed)), got) in enumerate(
        zip(programs, [*got_hidden, *[{}] * len(programs)], strict=False), 1
    ):
        want = f"A={a} instructions={executed}"
        if refused:  # whatever it returned may be vmlab's answer, not the student's
            msg = f"not graded as your work: {step} imports {refused[0]}"
            checks.append(
                check(f"hidden-{k}", False, msg, claimed=works, expected="your own engine's result")
            )
            continue
        if not isinstance(got, dict) or "error" in got or "a" not in got:
            why = got.get("error", "no result") if isinstance(got, dict) else "no result"
            why = data.get("error", why) if why == "no result" else why
            msg = f"engine failed: {str(why)[:200]}"
            checks.append(check(f"hidden-{k}", False, msg, claimed=works, expected="a result"))
            continue
        have = f"A={int(got['a'])} instructions={int(got['executed'])}"
        checks.append(
            check(
                f"hidden-{k}",
                have == want,
                "" if have == want else f"wrong result on hidden program {k} ({len(prog.code)} instructions)",
                claimed=works,
                measured=have,
                expected="the reference interpreter's final A and executed instructions",
                description=f"your {step} engine on hidden program {k} equals the reference interpreter",
            )
        )
    got_public = data.get("public") or {}
    differ = [f"S{n}" for n in public if got_public.get(f"S{n}") != claimed.get(f"S{n}")]
    checks.append(
        check(
            "claims",
            not differ,
            f"today's outcome differs from the report on {', '.join(differ)}" if differ else "",
            claimed=True,
            expected=f"the report's {step} outcomes on the public scenarios",
            description="the submitted engine reproduces the outcomes its report claims",
        )
    )
    if refused or unloaded is not None:
        why = f"{step} imports {refused[0]}" if refused else f"the engine did not load ({unloaded})"
        checks.append(
            ctx.check(f"speed[{step}]", False, f"not timed: {why}", task=task, timing=True).model_copy(
                update={"outcome": "skipped"}
            )
        )
    else:
        checks.append(_speed(ctx, timing, p, step, task, timing_note))
    return checks


def _timing_run(
    ctx: RerunContext, p: RerunParams, engine: bytes, solutions: list[str]
) -> tuple[dict[str, Any], str, list[str]]:
    """(timings, why there are none, modules refused) from a second container: the engine and the
    baseline, interleaved. Its hidden results, had it any, would be ignored: the student's code shares this
    container with the baseline, so only timings (never scored) come from here."""
    source = _baseline_source()
    if source is None:
        return {}, f"the baseline {BASELINE} is not installed on this grading host", []
    spec = {"solutions": solutions, "timing": {"scenario": p.timing_scenario, "repeats": p.repeats}}
    argv = ["-m", "vmlab.isa.rerun_inside", "--engine", "/in/engine.py", "--spec", "/in/spec.json"]
    res = ctx.run(
        [*argv, "--baseline", "/in/baseline.py"],
        {"engine.py": engine, "spec.json": json.dumps(spec).encode(), "baseline.py": source},
    )
    if res.timed_out:
        return {}, f"the timing run gave no result within {ctx.spec.timeout_s:g} s", []
    data = res.result_json()
    if data is None:
        return {}, f"the timing container exited {res.rc} without a result: {res.stderr_tail()}", []
    timing = data.get("timing")
    note = str(data.get("timing_error") or "no timings came back from the container")
    return (timing if isinstance(timing, dict) else {}), note, _refused(data)


def _speed(
    ctx: RerunContext,
    timing: dict[str, Any],
    p: RerunParams,
    step: str,
    task: str | None,
    note: str = "no timings came back from the container",
) -> CheckResult:
    """engine/baseline now vs in the report (`oracle` step), on the timing scenario: within the tolerance."""
    from vmlab.spec.paths import PathMissing, number

    s = f"S{p.timing_scenario}"
    tol = ctx.spec.tolerance
    desc = f"speed relative to the {BASELINE_STEP} on {s} agrees with the report within a factor {tol:g}"
    try:
        claimed = number(ctx.report, f"{step}.{s}") / number(ctx.report, f"{BASELINE_STEP}.{s}")
    except (PathMissing, ZeroDivisionError):
        return ctx.check(
            f"speed[{step}]",
            False,
            f"the report has no {step} and {BASELINE_STEP} timings on {s}",
            task=task,
            timing=True,
            description=desc,
        ).model_copy(update={"outcome": "skipped"})
    try:
        now = statistics.median(timing["candidate"]) / statistics.median(timing["baseline"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError, statistics.StatisticsError):
        return ctx.check(
            f"speed[{step}]",
            None,
            note,
            task=task,
            timing=True,
            description=desc,
        )
    ratio = now / claimed if claimed > 0 else float("inf")
    ok = 1 / tol <= ratio <= tol
    return ctx.check(
        f"speed[{step}]",
        ok,
        "" if ok else f"{step}/{BASELINE_STEP} is {now:.3g} now but {claimed:.3g} in the report",
        task=task,
        timing=True,
        measured=round(ratio, 4),
        expected=f"in [{1 / tol:.3g}, {tol:g}] (re-run ratio / reported ratio)",
        description=desc,
    )
