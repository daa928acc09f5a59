"""Tutors' re-run of a student's engine on hidden programs (`vmlab grade --rerun`, lab.toml `[rerun]`).

Two halves in one module, so the container needs nothing but vmlab:
- `rerun(ctx)` runs on the grading host: it derives hidden programs from the tutor's secret and the
  student id (generator seed, size and opcode probabilities), computes their oracle with the reference
  interpreter, runs the recorded engine in the sandbox and grades what comes back;
- `main()` runs inside the container (`python -m vmlab.isa.rerun`): it loads the engine, runs it on the
  programs it is given and prints one JSON line. It knows no oracle, so faking its output gains nothing.

Each task engine the student handed in (inputs t1..t6) is re-run; per engine tN the checks are
`rerun:hidden-<k>[tN]` (final A and executed instructions equal the reference interpreter's),
`rerun:claims[tN]` (the engine gives today the outcomes its report claims on the public scenarios) and
`rerun:speed[tN]` (its speed relative to the built-in switch engine, measured side by side in the
container, agrees with the report's within the lab's tolerance: timing, reported, never scored).
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
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
    spec = {
        "hidden": [{"code": prog.code.hex(), "a": prog.a, "l": prog.l} for prog, _ in programs],
        "public": public,
        "timing": {"scenario": p.timing_scenario, "repeats": p.repeats},
    }
    ctx.progress(
        f"{ctx.student}: {step} on {len(programs)} hidden programs and {len(public)} public scenarios"
    )
    res = ctx.run(
        ["-m", "vmlab.isa.rerun", "--engine", "/in/engine.py", "--spec", "/in/spec.json"],
        {"engine.py": ctx.inputs[step].read_bytes(), "spec.json": json.dumps(spec).encode()},
    )
    if res.timed_out:
        msg = f"the engine gave no result within {ctx.spec.timeout_s:g} s (an endless loop?)"
        return [check("hidden", False, msg, expected="a result for every hidden program")]
    data = res.result_json()
    if data is None:
        msg = f"the container exited {res.rc} without a result: {res.stderr_tail()}"
        return [check("hidden", None, msg)]

    checks: list[CheckResult] = []
    got_hidden = data.get("hidden") or []
    for k, ((prog, (a, executed)), got) in enumerate(
        zip(programs, [*got_hidden, *[{}] * len(programs)], strict=False), 1
    ):
        want = f"A={a} instructions={executed}"
        if not isinstance(got, dict) or "error" in got or "a" not in got:
            why = got.get("error", "no result") if isinstance(got, dict) else "no result"
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
    checks.append(_speed(ctx, data.get("timing") or {}, p, step, task))
    return checks


def _speed(
    ctx: RerunContext, timing: dict[str, Any], p: RerunParams, step: str, task: str | None
) -> CheckResult:
    """engine/switch now vs in the report, on the timing scenario: within the tolerance factor."""
    from vmlab.check.paths import PathMissing, number

    s = f"S{p.timing_scenario}"
    tol = ctx.spec.tolerance
    desc = f"speed relative to switch on {s} agrees with the report within a factor {tol:g}"
    try:
        claimed = number(ctx.report, f"{step}.{s}") / number(ctx.report, f"switch.{s}")
    except (PathMissing, ZeroDivisionError):
        return ctx.check(
            f"speed[{step}]",
            False,
            f"the report has no {step} and switch timings on {s}",
            task=task,
            timing=True,
            description=desc,
        ).model_copy(update={"outcome": "skipped"})
    try:
        now = statistics.median(timing["candidate"]) / statistics.median(timing["switch"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError, statistics.StatisticsError):
        return ctx.check(
            f"speed[{step}]",
            None,
            "no timings came back from the container",
            task=task,
            timing=True,
            description=desc,
        )
    ratio = now / claimed if claimed > 0 else float("inf")
    ok = 1 / tol <= ratio <= tol
    return ctx.check(
        f"speed[{step}]",
        ok,
        "" if ok else f"{step}/switch is {now:.3g} now but {claimed:.3g} in the report",
        task=task,
        timing=True,
        measured=round(ratio, 4),
        expected=f"in [{1 / tol:.3g}, {tol:g}] (re-run ratio / reported ratio)",
        description=desc,
    )


def _load_engine(path: Path) -> Any:
    """The student's run(code, a, l), loaded here rather than through the engine registry (which is
    being reworked): the re-run depends only on the homework's interface."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("student_engine", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path.name} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, "run", None)
    if not callable(fn):
        raise ImportError(f"{path.name} defines no function run(code, a, l)")
    return fn


def _timed(engine: Any, prog: Program) -> tuple[int, int, int, float]:
    """(a, l, executed, seconds) of one run: (a, l, executed[, stats]) or an object with a, l, executed."""
    import gc
    import time

    gc.disable()
    try:
        t0 = time.perf_counter()
        value = engine(prog.code, prog.a, prog.l)
        dt = time.perf_counter() - t0
    finally:
        gc.enable()
    if isinstance(value, tuple | list) and len(value) in (3, 4):
        a, l, executed = value[:3]
    else:
        a, l, executed = value.a, value.l, value.executed
    return int(a), int(l), int(executed), dt


def main(argv: list[str] | None = None) -> int:
    """Inside the container: run the engine on the given programs, print one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m vmlab.isa.rerun")
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    args = parser.parse_args(argv)

    import importlib

    from vmlab.isa.gen import scenario_program
    from vmlab.isa.machine import Program

    spec = json.loads(args.spec.read_text())
    result: dict[str, Any] = {"hidden": [], "public": {}, "timing": {}}
    with contextlib.redirect_stdout(sys.stderr):  # the engine's prints must not mix with the result
        try:
            engine = _load_engine(args.engine)
        except BaseException as e:
            result["error"] = f"{type(e).__name__}: {e}"
            engine = None
        if engine is not None:
            for i, h in enumerate(spec["hidden"]):
                prog = Program(code=bytes.fromhex(h["code"]), a=h["a"], l=h["l"], name=f"hidden-{i + 1}")
                try:
                    a, l, executed, _ = _timed(engine, prog)
                    result["hidden"].append({"a": a, "l": l, "executed": executed})
                except Exception as e:
                    result["hidden"].append({"error": f"{type(e).__name__}: {e}"})
            for n in spec["public"]:
                try:
                    a, _l, executed, _ = _timed(engine, scenario_program(n))
                    result["public"][f"S{n}"] = f"A={a} instructions={executed}"
                except Exception as e:
                    result["public"][f"S{n}"] = f"error: {type(e).__name__}: {e}"
            t = spec["timing"]
            prog = scenario_program(int(t["scenario"]))
            with contextlib.suppress(Exception):
                switch = importlib.import_module("vmlab.isa.engines.switch").run
                for _ in range(int(t["repeats"])):  # interleaved, so a load change hits both alike
                    for name, eng in (("switch", switch), ("candidate", engine)):
                        result["timing"].setdefault(name, []).append(_timed(eng, prog)[3])
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
