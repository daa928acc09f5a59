"""Inside the re-run container (`python -m vmlab.isa.rerun_inside`): guard the lab's solutions, load the
student's engine, run it on the programs it is given and print one JSON line. It knows no oracle, so
faking its output gains nothing; the grading host's half, which derives the programs and grades what
comes back, is vmlab.isa.rerun."""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmlab.isa.machine import Program


def _load_engine(path: Path) -> Any:
    """The student's run(code, a, l), loaded here rather than through the engine registry (which is
    solution material, refused in the re-run): the re-run depends only on the homework's interface."""
    return _load_run(path, "student_engine", "run(code, a, l)")


def _load_run(path: Path, name: str, what: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path.name} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import does: a dataclass in the file looks its module up there
    spec.loader.exec_module(module)
    fn = getattr(module, "run", None)
    if not callable(fn):
        raise ImportError(f"{path.name} defines no function {what}")
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
    """Inside the container: guard the solutions, load the engine, run it, print one JSON line.

    Without --baseline: the hidden programs and the public scenarios. With --baseline (a second
    container): only the timing scenario, the engine interleaved with the baseline, which is loaded
    under a private name after the engine, from the file the host passed in for this run alone.
    """
    parser = argparse.ArgumentParser(prog="python -m vmlab.isa.rerun")
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, default=None)
    args = parser.parse_args(argv)

    from vmlab.grade.sandbox import install_guard

    spec = json.loads(args.spec.read_text())
    guard = install_guard([str(m) for m in spec.get("solutions", [])])  # before any student code
    result: dict[str, Any] = {"hidden": [], "public": {}, "timing": {}}
    with contextlib.redirect_stdout(sys.stderr):  # the engine's prints must not mix with the result
        try:
            engine = _load_engine(args.engine)
        except BaseException as e:
            result["error"] = f"{type(e).__name__}: {e}"
            engine = None
        if engine is not None and args.baseline is None:
            _run_programs(engine, spec, result)
        elif engine is not None:
            _run_timing(engine, args.baseline, spec["timing"], guard.refused, result)
    result["uses_reference"] = list(guard.refused)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


def _run_programs(engine: Any, spec: dict[str, Any], result: dict[str, Any]) -> None:
    from vmlab.isa.gen import scenario_program
    from vmlab.isa.machine import Program

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


def _run_timing(
    engine: Any, baseline: Path, t: dict[str, Any], refused: list[str], result: dict[str, Any]
) -> None:
    from vmlab.isa.gen import scenario_program

    before = len(refused)
    try:
        base = _load_run(baseline, "_vmlab_rerun_baseline", "run(code, a, l)")
    except Exception as e:
        result["timing_error"] = f"the baseline did not load: {type(e).__name__}: {e}"
        return
    finally:
        del refused[before:]  # what the baseline itself imports is not the student's doing
    prog = scenario_program(int(t["scenario"]))
    try:
        for _ in range(int(t["repeats"])):  # interleaved, so a load change hits both alike
            for name, eng in (("baseline", base), ("candidate", engine)):
                result["timing"].setdefault(name, []).append(_timed(eng, prog)[3])
    except Exception as e:
        result["timing"] = {}
        result["timing_error"] = f"timing failed: {type(e).__name__}: {e}"


if __name__ == "__main__":
    raise SystemExit(main())
