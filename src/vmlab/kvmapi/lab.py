"""Step runners for labs/kvm-api: run the built-in guests, count their exits, time the round trips.

Counts come from the first repeat (user-space counts are the same in every repeat; a note says so if
not), times from all repeats (median in the summary). Kernel counters are prefixed `kvm_` and labelled
with their source in the provenance, so a reader can tell the VMM's view from the kernel's.
"""

from __future__ import annotations

import hashlib
from typing import Any

from vmlab.errors import UsageError
from vmlab.kvmapi.programs import BUILTINS, TAKES_LENGTH, TAKES_N, builtin
from vmlab.kvmapi.vmm import GuestRun, Limits, run_program
from vmlab.labs.runner import RunContext
from vmlab.report.model import Experiment, ExperimentEntry, Measurement, Provenance
from vmlab.report.stats import summarize

DEFAULT_PROGRAMS = [
    "hello", "console-bytewise", "console-rep", "console-hypercall", "console-mmio",
    "out", "cpuid", "mmio", "loop",
]  # fmt: skip
BASE_REASONS = ("IO", "MMIO", "HLT")


def _int_param(params: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UsageError(
            f"parameter {key}={value!r} must be an integer in {lo}..{hi}", hint=f"--set STEP.{key}=<integer>"
        )
    return value


def _limits(params: dict[str, Any]) -> Limits:
    return Limits(wall_s=float(params.get("max_seconds", 30.0)))


def _repeat(
    name: str, n: int | None, repeats: int, params: dict[str, Any], ctx: RunContext
) -> list[GuestRun]:
    program = builtin(name, n)
    runs = []
    for i in range(repeats):
        ctx.progress(f"kvm-api: {name} run {i + 1}/{repeats}")
        runs.append(
            run_program(program, limits=_limits(params), mount=bool(params.get("mount_debugfs", False)))
        )
    return runs


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def experiment_from_runs(runs: list[GuestRun]) -> Experiment:
    """One program's runs as an Experiment: exits by reason, kernel stats, loop time, guest output."""
    first = runs[0]
    counts: dict[str, int] = {r: 0 for r in BASE_REASONS}
    counts.update(first.exits)
    counts["user_exits"] = first.total_exits
    counts["hypercalls"] = first.hypercalls
    counts["output_bytes"] = len(first.output)
    for key, value in (first.kernel_stats or {}).items():
        counts[f"kvm_{key}"] = value
    for key, value in (first.debugfs or {}).items():
        counts[f"debugfs_{key}"] = value
    notes = [
        "counts (IO, MMIO, HLT, user_exits): exits seen by this user-space VMM, first repeat",
        f"kvm_* counts: {first.kernel_stats_source}, vCPU 0, delta over the run, first repeat",
        f"debugfs_* counts: {first.debugfs_source}",
        "samples: wall time of the whole KVM_RUN loop per run (ns), Python device emulation included",
    ]
    if any(dict(r.exits) != dict(first.exits) for r in runs[1:]):
        notes.append(
            "user-space exit counts differed between repeats: " + "; ".join(str(dict(r.exits)) for r in runs)
        )
    if (first.kernel_stats or {}).get("insn_emulation", 0) > 0:
        notes.append(
            "the kernel's instruction emulator ran guest code (kvm_insn_emulation > 0): "
            "exit costs include emulation"
        )
    loop_ns = [float(r.loop_ns) for r in runs]
    per_exit = [r.ns_per_exit for r in runs if r.total_exits]
    stages = (
        {"ns_per_exit": Measurement(unit="ns", samples=per_exit, summary=summarize(per_exit))}
        if per_exit
        else {}
    )
    return Experiment(
        unit="ns",
        samples=loop_ns,
        summary=summarize(loop_ns),
        provenance=Provenance(backend="kvm-api", accel="kvm", counter_source="vmm+stats_fd", notes=notes),
        provider="vmlab.kvmapi",
        stages=stages,
        counts=counts,
        values={
            "stop": first.stop,
            "exit_value": first.exit_value,
            "output_sha256": _sha(first.output),
            "kernel_stats_source": first.kernel_stats_source,
            "debugfs_source": first.debugfs_source,
            "signals": first.signals,
        },
        text=first.text,
    )


def programs(params: dict[str, Any], ctx: RunContext) -> dict[str, ExperimentEntry]:
    """Step `programs`: every listed built-in program, `repeats` times, as the group `programs`."""
    names = params.get("programs", DEFAULT_PROGRAMS)
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names) or not names:
        raise UsageError(f"parameter programs={names!r} must be a non-empty list of program names")
    unknown = [x for x in names if x not in BUILTINS]
    if unknown:
        raise UsageError(f"unknown programs {unknown} (known: {', '.join(BUILTINS)})")
    repeats = _int_param(params, "repeats", 5, 1, 1000)
    n = _int_param(params, "n", 1000, 1, 1_000_000)
    length = _int_param(params, "length", 1024, 1, 0xFFFF)
    group: dict[str, Experiment] = {}
    for name in names:
        arg = n if name in TAKES_N else (length if name in TAKES_LENGTH else None)
        group[name] = experiment_from_runs(_repeat(name, arg, repeats, params, ctx))
    return {"programs": group}


def exit_cost(params: dict[str, Any], ctx: RunContext) -> dict[str, ExperimentEntry]:
    """Step `exit-cost`: ns per IO and per MMIO exit round trip, gross and net of the guest's loop.

    gross = loop time / exits of `out` (or `mmio`); net = (time(out N) - time(loop N)) / N, where `loop`
    runs the same number of guest instructions without exits, so the guest's own work cancels out.
    """
    repeats = _int_param(params, "repeats", 7, 1, 1000)
    n = _int_param(params, "n", 2000, 1, 1_000_000)
    runs = {name: _repeat(name, n, repeats, params, ctx) for name in ("out", "mmio", "loop")}
    group: dict[str, Experiment] = {}
    base = [r.loop_ns for r in runs["loop"]]
    for name, key in (("out", "io"), ("mmio", "mmio")):
        gross = [r.ns_per_exit for r in runs[name]]
        net = [(r.loop_ns - b) / n for r, b in zip(runs[name], base, strict=True)]
        exp = experiment_from_runs(runs[name])
        group[key] = exp.model_copy(
            update={
                "unit": "ns/exit",
                "samples": gross,
                "summary": summarize(gross),
                "stages": {
                    "net": Measurement(unit="ns/exit", samples=net, summary=summarize(net)),
                    **exp.stages,
                },
                "values": {
                    **exp.values,
                    "n": n,
                    "method": "gross = loop ns / exits; net = (ns(prog N) - ns(loop N)) / N",
                },
            }
        )
    group["loop"] = experiment_from_runs(runs["loop"])
    return {"exit-cost": group}
