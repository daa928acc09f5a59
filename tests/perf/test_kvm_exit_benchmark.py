"""The exit-cost benchmark of the kvm-api lab: ns per exit of vmlab's Python VMM against the C baseline
(labs/kvm-api/c/cvmm.c, gcc -O2) on the same guest (`out`, VMLAB_PERF_EXITS OUTs, default 10,000), in
alternating pairs (VMLAB_PERF_PAIRS, default 7). Appended with the host fingerprint to
$VMLAB_PERF_OUT (default runs/perf/kvm-exit.jsonl). The goal it records (not asserts): Python/C <= 1.5.
Asserts are about the measurement: both VMMs saw exactly n + 1 exits in every pair."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.perf, pytest.mark.kvm]


def test_python_vmm_against_the_c_baseline(tmp_path: Path) -> None:
    from tests.conftest import unavailable

    from vmlab.host.fingerprint import host_info
    from vmlab.kvmapi.cbase import build, run_c, source_path
    from vmlab.kvmapi.programs import builtin
    from vmlab.kvmapi.vmm import run_program
    from vmlab.labs.catalog import lab_dir

    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        unavailable("/dev/kvm", f"cannot be opened: {e.strerror}")
    pairs = int(os.environ.get("VMLAB_PERF_PAIRS", "7"))
    n = int(os.environ.get("VMLAB_PERF_EXITS", "10000"))
    binary = build(tmp_path / "cvmm", source_path(lab_dir("kvm-api")))
    program = builtin("out", n)
    c_ns, py_ns = [], []
    for _ in range(pairs):
        c = run_c(binary, program, tmp_path)
        py = run_program(program, debugfs=False)
        # n OUTs in the loop, then the hlt: n IO + 1 HLT for both
        assert c.exits == {"IO": n, "HLT": 1} and dict(py.exits) == {"IO": n, "HLT": 1}
        c_ns.append(c.ns_per_exit)
        py_ns.append(py.ns_per_exit)
    c_med, py_med = statistics.median(c_ns), statistics.median(py_ns)
    result = {
        "exits": n + 1,
        "pairs": pairs,
        "c_ns_per_exit": c_ns,
        "python_ns_per_exit": py_ns,
        "c_median": c_med,
        "python_median": py_med,
        "vmm_cost_ns": py_med - c_med,
        "ratio": py_med / c_med,
        "goal": "ratio <= 1.5",
    }
    out = Path(os.environ.get("VMLAB_PERF_OUT", "runs/perf/kvm-exit.jsonl"))
    out.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": host_info().model_dump(mode="json"),
        **result,
    }
    with out.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    print(
        f"\nns per exit: C {c_med:,.0f}, Python {py_med:,.0f}, "
        f"Python/C {result['ratio']:.2f} (goal <= 1.5) -> {out}",
        file=sys.stderr,
    )
