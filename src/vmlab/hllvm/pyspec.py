"""CPython's specialising adaptive interpreter, observed from a child process (see pychild.py).

Expected specialised instruction names are pinned per CPython minor version: PEP 659's instruction
families are an implementation detail and were renamed in 3.12 and 3.13, so other versions get the
observations without a verdict (`expected_found` is None, and the report says why in one line). Pinned
from the child's output on each: 3.11 (Debian 12), 3.12, 3.13 (Debian 13); tests/unit/hllvm/data/.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from vmlab.errors import BackendError
from vmlab.report.model import Experiment, Provenance
from vmlab.report.stats import summarize

CHILD = Path(__file__).with_name("pychild.py")

# (major, minor) -> workload -> (names that must appear after warm-up, names that must not)
EXPECTED: dict[tuple[int, int], dict[str, tuple[list[str], list[str]]]] = {
    (3, 11): {
        "add_ints": (["BINARY_OP_ADD_INT", "LOAD_FAST__LOAD_FAST"], []),
        "add_floats": (["BINARY_OP_ADD_FLOAT"], []),
        # float + int has no specialised BINARY_OP form in 3.11: the instruction stays adaptive
        "add_mixed": (["BINARY_OP_ADAPTIVE"], ["BINARY_OP_ADD_INT", "BINARY_OP_ADD_FLOAT"]),
        "call_builtin": (["LOAD_GLOBAL_BUILTIN", "PRECALL_NO_KW_LEN"], []),
    },
    # 3.12: PRECALL is gone (CALL_NO_KW_LEN), no *_ADAPTIVE names (an unspecialised instruction keeps
    # its base name), superinstructions still with two underscores.
    (3, 12): {
        "add_ints": (["BINARY_OP_ADD_INT", "LOAD_FAST__LOAD_FAST"], []),
        "add_floats": (["BINARY_OP_ADD_FLOAT"], []),
        "add_mixed": (["BINARY_OP"], ["BINARY_OP_ADD_INT", "BINARY_OP_ADD_FLOAT"]),
        "call_builtin": (["LOAD_GLOBAL_BUILTIN", "CALL_NO_KW_LEN"], []),
    },
    # 3.13: CALL_LEN; superinstructions with one underscore (LOAD_FAST_LOAD_FAST); RESUME_CHECK.
    (3, 13): {
        "add_ints": (["BINARY_OP_ADD_INT", "LOAD_FAST_LOAD_FAST"], []),
        "add_floats": (["BINARY_OP_ADD_FLOAT"], []),
        "add_mixed": (["BINARY_OP"], ["BINARY_OP_ADD_INT", "BINARY_OP_ADD_FLOAT"]),
        "call_builtin": (["LOAD_GLOBAL_BUILTIN", "CALL_LEN"], []),
    },
}


def expected_for(version: tuple[int, int]) -> dict[str, tuple[list[str], list[str]]] | None:
    return EXPECTED.get(version)


def unpinned_note(version: str) -> str:
    pinned = ", ".join(f"{a}.{b}" for a, b in sorted(EXPECTED))
    return f"CPython {version} is outside the versions this lab knows (pinned: {pinned}): no verdict"


def run_child(
    *, warmup: int = 20, n: int = 100, count_n: int = 10, depth: int = 18, repeats: int = 7
) -> dict[str, Any]:
    """Run pychild.py in a fresh interpreter (sys.executable, -I: no site, no user path)."""
    opts = json.dumps({"warmup": warmup, "n": n, "count_n": count_n, "depth": depth, "repeats": repeats})
    try:
        p = subprocess.run(
            [sys.executable, "-I", str(CHILD), opts], capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        raise BackendError("the CPython child ran longer than 300 s", hint="lower depth/repeats") from None
    if p.returncode != 0:
        last = next((ln for ln in reversed(p.stderr.splitlines()) if ln.strip()), f"exit {p.returncode}")
        raise BackendError(f"the CPython child failed: {last}")
    result: dict[str, Any] = json.loads(p.stdout)
    return result


def experiments(result: dict[str, Any]) -> tuple[dict[str, Experiment], dict[str, Experiment]]:
    """(per-function specialisation experiments, tracing-cost experiments) from the child's JSON."""
    major, minor = result["python"][:2]
    pinned = expected_for((major, minor))
    version = f"{major}.{minor}"
    spec: dict[str, Experiment] = {}
    for name, f in result["functions"].items():
        before, after, plain = f["before"], f["after"], f["plain"]
        specialised = sum(1 for a, b in zip(after, plain, strict=True) if a != b)
        values: dict[str, float | int | str | bool | None] = {
            "python": version,
            "before": " ".join(before),
            "after": " ".join(after),
            "new_after_warmup": " ".join(sorted(set(after) - set(before))),
        }
        notes = [
            "text: the instruction names of dis.get_instructions(f, adaptive=True) after warm-up",
            f"executed: opcodes one call f({f['count_n']}) ran, counted with sys.settrace + f_trace_opcodes "
            "(the RESUME that fires the call event is not counted)",
        ]
        if pinned is None:
            values["expected_found"] = None
            notes.append(unpinned_note(version))
        else:
            want, unwanted = pinned.get(name, ([], []))
            missing = [w for w in want if w not in after]
            present = [u for u in unwanted if u in after]
            values["expected"] = " ".join(want)
            values["missing"] = " ".join(missing)
            values["expected_found"] = not missing and not present
        spec[name] = Experiment(
            unit="count",
            provenance=Provenance(backend=f"cpython-{version}", counter_source="dis", notes=notes),
            provider="vmlab.hllvm",
            counts={
                "instructions": len(after),
                "specialised": specialised,
                "executed": int(f["executed"]),
                "count_n": int(f["count_n"]),
            },
            values=values,
            text=" ".join(after),
        )
    fib = result["fib"]
    calls = int(fib["calls"])
    tracing: dict[str, Experiment] = {}
    for mode, ns in fib["ns"].items():
        per_call = [x / calls for x in ns]
        tracing[mode] = Experiment(
            unit="ns/call",
            samples=per_call,
            summary=summarize(per_call),
            provenance=Provenance(
                backend=f"cpython-{version}",
                counter_source="time.perf_counter_ns",
                notes=[f"fib({fib['depth']}) = {calls} calls, hook: {mode}; modes interleaved per repeat"],
            ),
            provider="vmlab.hllvm",
            counts={"calls": calls, "depth": int(fib["depth"])},
        )
    return spec, tracing
