"""Run one engine on one scenario in a child process and print the outcome as JSON.

The lab runs a student's engine here, not in vmlab's own process: an engine that loops forever is
killed at the timeout, one that crashes or prints cannot disturb the report.
Usage: python -m vmlab.isa.worker (--engine NAME | --engine-file FILE) --scenario N [--repeats R]
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vmlab.isa.worker")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--engine")
    who.add_argument("--engine-file", type=Path)
    parser.add_argument("--scenario", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)

    from vmlab.errors import VmlabError
    from vmlab.isa.bench import time_engine
    from vmlab.isa.engines import Engine, get_engine, load_engine_file
    from vmlab.isa.gen import scenario_program

    payload: dict[str, Any]
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the engine's prints must not mix with our JSON
            engine: Engine
            if args.engine_file is not None:
                engine = load_engine_file(args.engine_file)
            elif args.engine == "reference":
                from vmlab.isa.machine import Program
                from vmlab.isa.reference import run_reference

                def engine(code: bytes, a: int, l: int) -> Any:
                    return run_reference(Program(code=code, a=a, l=l))
            else:
                engine = get_engine(args.engine)
            run = time_engine(engine, scenario_program(args.scenario), args.repeats, "candidate")
        r = run.result
        payload = {
            "a": r.a,
            "l": r.l,
            "executed": r.executed,
            "stats": r.stats,
            "samples": run.samples,
            "translate_samples": run.translate_samples,
        }
    except VmlabError as e:
        payload = {"error": e.one_line()}
    except Exception as e:  # a student's bug: report it as data, the checks will show it
        tb = e.__traceback__
        where = ""
        while tb is not None:
            where = f" ({Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})"
            tb = tb.tb_next
        payload = {"error": f"{type(e).__name__}: {e}{where}"}
    sys.stdout.write(json.dumps(payload) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
