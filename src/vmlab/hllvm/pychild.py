"""Run in a child CPython (the kit's own interpreter): specialisation, opcode counts, tracing cost.

Started as `python pychild.py '<json options>'` by vmlab.hllvm.pyspec, never imported by the kit, so
the parent's warmed-up code, installed trace functions and imported modules cannot change what we see.
Standard library only. Prints one JSON object on stdout.

What it measures, in this order (each part would disturb the next if done earlier):
1. `dis.get_instructions(f, adaptive=True)` of each workload before any call, then after `warmup`
   calls: 3.11's specialising adaptive interpreter (PEP 659) rewrites instructions in place once they
   have seen stable types, e.g. BINARY_OP -> BINARY_OP_ADD_INT.
2. The opcodes each function executes for one call, counted with sys.settrace and f_trace_opcodes.
3. The cost of instrumentation on a recursive function: no hook, a sys.setprofile hook (call/return
   events) and a sys.settrace hook (call, line and return events), the same trade-off as a Valgrind tool.
"""

from __future__ import annotations

import dis
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any


def add_ints(n: int) -> int:
    total = 0
    for i in range(n):
        total = total + i
    return total


def add_floats(n: int) -> float:
    total = 0.0
    step = 0.5
    for _ in range(n):
        total = total + step
    return total


def add_mixed(n: int) -> float:
    total = 0.5
    for i in range(n):
        total = total + i  # float + int: 3.11 has no specialised form, the site stays adaptive
    return total


def call_builtin(n: int) -> int:
    items = [1, 2, 3]
    count = 0
    for _ in range(n):
        count = count + len(items)
    return count


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


WORKLOADS: dict[str, Callable[[int], Any]] = {
    "add_ints": add_ints,
    "add_floats": add_floats,
    "add_mixed": add_mixed,
    "call_builtin": call_builtin,
}


def opnames(f: Callable[..., Any], adaptive: bool) -> list[str]:
    return [ins.opname for ins in dis.get_instructions(f, adaptive=adaptive)]


def executed_opcodes(f: Callable[[int], Any], n: int) -> int:
    """Opcodes run by one call of f(n), counted by an opcode-level trace function."""
    counts: Counter[CodeType] = Counter()
    target = f.__code__

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code is not target:
            return None
        # Line events stay on (they are not counted): with f_trace_lines off, CPython 3.12 and 3.13
        # deliver no opcode events at all (the count was 0 there; 3.11 counts the same either way).
        frame.f_trace_opcodes = True
        if event == "opcode":
            counts[frame.f_code] += 1
        return tracer

    # Twice, counting the second: CPython 3.12 (3.12.1 measured) delivers no opcode events in the first
    # traced call of a code object; 3.11 and 3.13 count the same in both.
    for _ in range(2):
        counts.clear()
        sys.settrace(tracer)
        try:
            f(n)
        finally:
            sys.settrace(None)
    return counts[target]


def _profile_hook(frame: FrameType, event: str, arg: Any) -> None:
    return None


def _trace_hook(frame: FrameType, event: str, arg: Any) -> Any:
    return _trace_hook


def tracing_cost(depth: int, repeats: int) -> dict[str, list[float]]:
    """ns per call of fib(depth) with no hook, a profile hook and a trace hook, interleaved."""
    fib(depth)  # warm up (specialise) before timing
    samples: dict[str, list[float]] = {"plain": [], "setprofile": [], "settrace": []}
    for _ in range(repeats):
        for mode in samples:
            if mode == "setprofile":
                sys.setprofile(_profile_hook)
            elif mode == "settrace":
                sys.settrace(_trace_hook)
            t0 = time.perf_counter_ns()
            fib(depth)
            t1 = time.perf_counter_ns()
            sys.setprofile(None)
            sys.settrace(None)
            samples[mode].append(float(t1 - t0))
    return samples


def main(argv: list[str]) -> dict[str, Any]:
    opts = json.loads(argv[1]) if len(argv) > 1 else {}
    warmup = int(opts.get("warmup", 20))
    n = int(opts.get("n", 100))
    count_n = int(opts.get("count_n", 10))
    depth = int(opts.get("depth", 18))
    repeats = int(opts.get("repeats", 5))
    functions: dict[str, Any] = {}
    for name, f in WORKLOADS.items():
        before = opnames(f, adaptive=True)
        for _ in range(warmup):
            f(n)
        after = opnames(f, adaptive=True)
        functions[name] = {
            "before": before,
            "after": after,
            "plain": opnames(f, adaptive=False),
            "instructions": len(after),
        }
    for name, f in WORKLOADS.items():
        functions[name]["executed"] = executed_opcodes(f, count_n)
        functions[name]["count_n"] = count_n
    cost = tracing_cost(depth, repeats)
    return {
        "python": list(sys.version_info[:3]),
        "implementation": sys.implementation.name,
        "functions": functions,
        "fib": {"depth": depth, "calls": _fib_calls(depth), "ns": cost},
        "medians": {k: statistics.median(v) for k, v in cost.items()},
    }


def _fib_calls(n: int) -> int:
    """Calls made by fib(n): C(n) = 1 + C(n-1) + C(n-2), C(0) = C(1) = 1."""
    a, b = 1, 1
    for _ in range(n - 1):
        a, b = b, 1 + a + b
    return b if n >= 1 else 1


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(sys.argv)) + "\n")
