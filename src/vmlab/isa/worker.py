"""Run one engine on one program in a child process and print the outcome as one JSON line.

The lab and `vmlab isa run --engine-module` run a student's engine here, not in vmlab's own process:
an engine that loops forever is killed at the timeout, one that crashes or prints cannot disturb the
report or the command's output.

Usage (stable; the tutors' re-run relies on it):

    python -m vmlab.isa.worker (--engine NAME | --engine-file FILE)
        (--scenario N | --program FILE [--a A] [--l L]) [--repeats R] [--param KEY=VALUE ...]
        [--diagnose SECONDS]

Output keys: a, l, executed, stats, samples, translate_samples, params, and when the outcome differs
from the oracle (the scenario's, or the reference interpreter's for a program file) and --diagnose is
given: divergence, a sentence naming the first instruction after which the engine goes wrong. On
failure: error (one line) and error_kind ("usage": the file or its parameters; "engine": it raised).
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmlab.isa.machine import Program, Result
    from vmlab.isa.registry import Engine


def where(e: BaseException) -> str:
    """' (engine.py:27)': the innermost frame of a traceback, which is where a student looks first."""
    tb = e.__traceback__
    found = ""
    while tb is not None:
        found = f" ({Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})"
        tb = tb.tb_next
    return found


def first_divergence(engine: Engine, program: Program, budget_s: float) -> str | None:
    """Bisect on program prefixes for the first instruction after which `engine` goes wrong.

    The prefix cut after offset k (with a HALT appended) runs exactly like the whole program until
    execution first reaches k, so the smallest cut on which the engine and the reference interpreter
    disagree names the first instruction whose execution the engine gets wrong. Stops after
    `budget_s` seconds with the range found so far.
    """
    from vmlab.isa.deadline import deadline
    from vmlab.isa.machine import HALT, NAMES, Program
    from vmlab.isa.reference import run_reference
    from vmlab.isa.registry import as_result

    code = program.code

    def compare(k: int) -> tuple[bool, str]:
        cut = Program(code=code[:k] + bytes([HALT]), a=program.a, l=program.l)
        want = run_reference(cut)
        try:
            got = as_result(engine(cut.code, cut.a, cut.l), "engine")
        except Exception as e:
            return False, f"yours raised {type(e).__name__}: {e}"
        same = (got.a, got.l, got.executed) == (want.a, want.l, want.executed)
        return same, (
            f"the reference ends A={want.a} L={want.l} after {want.executed} instructions, "
            f"yours A={got.a} L={got.l} after {got.executed}"
        )

    t0 = time.monotonic()
    lo, hi = 0, len(code)  # the cut after lo instructions agrees (0: just HALT), the cut after hi not
    detail = ""
    try:
        with deadline(budget_s, "diagnosis"):
            while hi - lo > 1 and time.monotonic() - t0 < budget_s:
                mid = (lo + hi) // 2
                same, text = compare(mid)
                if same:
                    lo = mid
                else:
                    hi, detail = mid, text
            if hi - lo == 1 and not detail:
                detail = compare(hi)[1]
    except Exception:  # out of time inside a probe: report the range found so far
        pass
    if hi - lo > 1:
        return (
            f"first divergence somewhere in offsets {lo}..{hi - 1} (diagnosis stopped after {budget_s:g} s)"
        )
    op = code[hi - 1]
    return (
        f"first divergence at offset {hi - 1} ({NAMES.get(op, op)}): cut there, {detail}" if detail else None
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vmlab.isa.worker")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--engine")
    who.add_argument("--engine-file", type=Path)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", type=int)
    what.add_argument("--program", type=Path)
    parser.add_argument("--a", type=int, default=None)
    parser.add_argument("--l", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--param", action="append", default=[])
    parser.add_argument("--diagnose", type=float, default=0.0)
    args = parser.parse_args(argv)

    from vmlab.errors import VmlabError
    from vmlab.isa.bench import time_engine
    from vmlab.isa.gen import scenario_program
    from vmlab.isa.machine import load_program
    from vmlab.isa.registry import bind_params, get_engine, load_engine_file, parse_param

    payload: dict[str, Any]
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the engine's prints must not mix with our JSON
            params = dict(parse_param(p) for p in args.param)
            program = (
                scenario_program(args.scenario)
                if args.scenario is not None
                else load_program(args.program, args.a, args.l)
            )
            engine: Engine
            if args.engine_file is not None:
                engine = load_engine_file(args.engine_file)
                source = args.engine_file.name
            elif args.engine == "reference":
                engine, source = _reference, "the reference interpreter"
            else:
                engine, source = get_engine(args.engine), f"engine {args.engine!r}"
            engine = bind_params(engine, params, source)
            try:
                run = time_engine(engine, program, args.repeats, "candidate")
            except VmlabError:
                raise
            except Exception as e:  # the engine's own bug: report it as data, the checks will show it
                payload = {"error": f"{type(e).__name__}: {e}{where(e)}", "error_kind": "engine"}
            else:
                r = run.result
                payload = {
                    "a": r.a,
                    "l": r.l,
                    "executed": r.executed,
                    "stats": r.stats,
                    "samples": run.samples,
                    "translate_samples": run.translate_samples,
                    "params": params,
                }
                if args.diagnose > 0 and (r.a, r.executed) != _oracle(args.scenario, program):
                    found = first_divergence(engine, program, args.diagnose)
                    if found:
                        payload["divergence"] = found
    except VmlabError as e:
        payload = {"error": e.one_line(), "error_kind": "usage"}
    except Exception as e:
        payload = {"error": f"{type(e).__name__}: {e}{where(e)}", "error_kind": "engine"}
    sys.stdout.write(json.dumps(payload) + "\n")
    return 0


def _reference(code: bytes, a: int, l: int) -> Result:
    from vmlab.isa.reference import run

    return run(code, a, l)


def _oracle(scenario: int | None, program: Program) -> tuple[int, int]:
    """(final A, executed): the published one of a scenario, the reference interpreter's otherwise."""
    from vmlab.isa.gen import SCENARIOS
    from vmlab.isa.reference import run_reference

    if scenario is not None:
        return SCENARIOS[scenario].final_a, SCENARIOS[scenario].executed
    want = run_reference(program)
    return want.a, want.executed


if __name__ == "__main__":
    raise SystemExit(main())
