"""Step runners for labs/kvm-api: run the built-in guests, count their exits, time the round trips.

Counts come from the first repeat (user-space counts are the same in every repeat; a note says so if
not), times from all repeats (median in the summary). Kernel counters are prefixed `kvm_` and labelled
with their source in the provenance, so a reader can tell the VMM's view from the kernel's.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from vmlab.errors import UsageError
from vmlab.kvmapi.guest import Program
from vmlab.kvmapi.programs import BUILTINS, TAKES_LENGTH, TAKES_N, builtin
from vmlab.kvmapi.vmm import GuestRun, Limits, run_program
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry, Measurement, Provenance
from vmlab.report.stats import summarize

if TYPE_CHECKING:
    pass

DEFAULT_PROGRAMS = [
    "hello", "console-bytewise", "console-rep", "console-hypercall", "console-mmio",
    "out", "cpuid", "mmio", "loop",
]  # fmt: skip
BASE_REASONS = ("IO", "MMIO", "HLT")


LINE_ADDR = 0x8000  # where the own-program task's line lies: dw length, then the bytes


class RunLimits(StepParams):
    timeout: float = Field(30.0, gt=0)
    mount_debugfs: bool = False


class ProgramsParams(RunLimits):
    programs: list[str] = Field(default_factory=lambda: list(DEFAULT_PROGRAMS), min_length=1)
    n: int = Field(1000, ge=1, le=1_000_000)
    length: int = Field(1024, ge=1, le=0xFFFF)
    repeats: int = Field(5, ge=1, le=1000)

    @field_validator("programs")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [x for x in v if x not in BUILTINS]
        if unknown:
            raise ValueError(f"unknown programs {unknown} (known: {', '.join(BUILTINS)})")
        return v


class ExitCostParams(RunLimits):
    n: int = Field(2000, ge=1, le=1_000_000)
    repeats: int = Field(7, ge=1, le=1000)


class OwnProgramParams(RunLimits):
    line: str = Field("hello from my own guest\n", min_length=1, max_length=4096)
    repeats: int = Field(3, ge=1, le=100)


def _repeat(
    program: Program,
    repeats: int,
    params: RunLimits,
    ctx: StepContext,
    preload: dict[int, bytes] | None = None,
) -> list[GuestRun]:
    runs = []
    for i in range(repeats):
        ctx.progress(f"kvm-api: {program.name} run {i + 1}/{repeats}")
        runs.append(
            run_program(
                program,
                limits=Limits(wall_s=params.timeout),
                mount=params.mount_debugfs,
                preload=preload,
            )
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


def programs(params: ProgramsParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `programs`: every listed built-in program, `repeats` times, as the group `programs`."""
    group: dict[str, Experiment] = {}
    for name in params.programs:
        arg = params.n if name in TAKES_N else (params.length if name in TAKES_LENGTH else None)
        group[name] = experiment_from_runs(_repeat(builtin(name, arg), params.repeats, params, ctx))
    return {"programs": group}


def own_program(params: OwnProgramParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `own-program`: the student's guest must print the line the VMM put at LINE_ADDR.

    The line lies at guest-physical 0x8000 as a 16-bit little-endian length followed by its bytes, so
    the program cannot hard-code it (the tutors' re-run puts another line there). `values.output_ok` says
    whether the guest printed exactly that line; `counts.user_exits` is what the exit budget grades.
    """
    from vmlab.kvmapi.guest import from_file

    path = ctx.inputs.get("program")
    if path is None:
        raise UsageError("no guest program to run", hint="vmlab lab run kvm-api --input program=my_line.asm")
    program = from_file(path)
    line = params.line.encode()
    preload = {LINE_ADDR: len(line).to_bytes(2, "little") + line}
    runs = _repeat(program, params.repeats, params, ctx, preload)
    exp = experiment_from_runs(runs)
    printed = runs[0].output
    exp = exp.model_copy(
        update={
            "values": {
                **exp.values,
                "program": path.name,
                "line_sha256": _sha(line),
                "output_ok": printed == line,
                "line_bytes": len(line),
            }
        }
    )
    return {ctx.step_id: exp}


def exit_cost(params: ExitCostParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `exit-cost`: ns per IO and per MMIO exit round trip, gross and net of the guest's loop.

    gross = loop time / exits of `out` (or `mmio`); net = (time(out N) - time(loop N)) / N, where `loop`
    runs the same number of guest instructions without exits, so the guest's own work cancels out.
    """
    n = params.n
    runs = {name: _repeat(builtin(name, n), params.repeats, params, ctx) for name in ("out", "mmio", "loop")}
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


class CBaselineParams(RunLimits):
    n: int = Field(4000, ge=100, le=1_000_000)
    repeats: int = Field(5, ge=1, le=100)


def c_baseline(params: CBaselineParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `c-baseline`: the `out` guest under the C VMM and under the Python VMM, run in turns.

    Both see the same exits (n IO + 1 HLT); ns per exit = loop time / exits for each, and
    `vmm-cost` = Python minus C per exit, paired run by run: what this Python VMM adds to the kernel's
    round trip. Runs alternate (C, Python, C, ...) so that a busy host slows both alike.
    """
    from vmlab.kvmapi.cbase import build, run_c, source_path

    source = source_path(ctx.lab_dir)
    binary = build(ctx.scratch / "cvmm", source)
    ctx.attach(source)  # the source the numbers came from, beside the report
    program = builtin("out", params.n)
    c_runs, py_runs = [], []
    for i in range(params.repeats):
        ctx.progress(f"kvm-api: out {params.n} under C and Python, round {i + 1}/{params.repeats}")
        c_runs.append(run_c(binary, program, ctx.scratch / "cvmm", timeout=params.timeout))
        py_runs.append(run_program(program, limits=Limits(wall_s=params.timeout), debugfs=False))
    c_per = [r.ns_per_exit for r in c_runs]
    py_per = [r.ns_per_exit for r in py_runs]
    diff = [p - c for p, c in zip(py_per, c_per, strict=True)]
    c0 = c_runs[0]
    c_counts = {r: 0 for r in BASE_REASONS}
    c_counts.update(c0.exits)
    c_counts["user_exits"] = c0.total_exits
    prov_c = Provenance(
        backend="kvm-api",
        accel="kvm",
        counter_source="cvmm",
        notes=[
            "counts: exits seen by the C VMM (labs/kvm-api/c/cvmm.c, gcc -O2), first run",
            "samples: ns per exit = wall time of its KVM_RUN loop / exits, one per run",
        ],
    )
    c_exp = Experiment(
        unit="ns/exit",
        samples=c_per,
        summary=summarize(c_per),
        provenance=prov_c,
        provider="vmlab.kvmapi.cbase",
        counts=c_counts,
        values={"stop": c0.stop, "n": params.n, "vmm": "C (cvmm.c)"},
    )
    py_exp = experiment_from_runs(py_runs)
    py_exp = py_exp.model_copy(
        update={
            "unit": "ns/exit",
            "samples": py_per,
            "summary": summarize(py_per),
            "stages": {},
            "values": {**py_exp.values, "n": params.n, "vmm": "Python (vmlab.kvmapi.vmm)"},
        }
    )
    cost = Experiment(
        unit="ns/exit",
        samples=diff,
        summary=summarize(diff),
        provenance=Provenance(
            backend="kvm-api",
            accel="kvm",
            counter_source="derived",
            notes=["samples: Python ns per exit minus C ns per exit, run by run (alternating runs)"],
        ),
        provider="vmlab.kvmapi.cbase",
        values={"method": "python ns/exit - c ns/exit, paired by round", "n": params.n},
    )
    return {"c-baseline": {"c": c_exp, "python": py_exp, "vmm-cost": cost}}


PAGING_PROGRAMS = ("pages", "cr3", "invlpg", "ptwrite")


class PagingParams(RunLimits):
    pages: int = Field(32, ge=1, le=64)
    cr3_n: int = Field(1000, ge=1, le=1_000_000)
    repeats: int = Field(3, ge=1, le=100)


def paging(params: PagingParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `paging`: the long-mode guests with paging; user-space exits are fixed, the kernel's
    `kvm_pf_*`, `kvm_tlb_flush` and `kvm_invlpg` counts show what this host's KVM did for them."""
    group: dict[str, Experiment] = {}
    for name in PAGING_PROGRAMS:
        program = builtin(name, params.cr3_n if name == "cr3" else params.pages)
        exp = experiment_from_runs(_repeat(program, params.repeats, params, ctx))
        n = params.cr3_n if name == "cr3" else params.pages
        group[name] = exp.model_copy(update={"values": {**exp.values, "n": n}})
    return {"paging": group}
