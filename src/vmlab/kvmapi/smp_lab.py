"""The kvm-api lab's two-vCPU step: the three ways of waiting (smp-spin, smp-doorbell, smp-ipi), their
exits per vCPU and how much of its wall time the waiting vCPU burns (vmlab.kvmapi.smp runs them).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from vmlab.kvmapi.lab import RunLimits
from vmlab.kvmapi.smp_guests import WORK  # the guests only: the VMM (threads, signals) stays lazy
from vmlab.kvmapi.vmm import Limits
from vmlab.labs.step import StepContext
from vmlab.report.model import Experiment, ExperimentEntry, Measurement, Provenance
from vmlab.report.stats import summarize

if TYPE_CHECKING:
    from vmlab.kvmapi.smp import SmpRun


class SmpParams(RunLimits):
    n: int = Field(300, ge=1, le=100_000)
    repeats: int = Field(3, ge=1, le=100)
    programs: list[str] = Field(default_factory=lambda: ["spin", "doorbell", "ipi"], min_length=1)

    @field_validator("programs")
    @classmethod
    def _known_smp(cls, v: list[str]) -> list[str]:
        known = ("spin", "doorbell", "ipi")
        unknown = [x for x in v if x not in known]
        if unknown:
            raise ValueError(f"unknown two-vCPU programs {unknown} (known: {', '.join(known)})")
        return v


# the kernel counters a two-vCPU experiment keeps per vCPU (the rest of the stats fd stays in the
# one-vCPU programs): how halts ended, what was injected, whether PAUSE loops reached the scheduler
SMP_KERNEL_STATS = (
    "exits", "halt_exits", "halt_wakeup", "halt_attempted_poll", "halt_successful_poll",
    "halt_poll_invalid", "halt_poll_success_ns", "halt_poll_fail_ns", "halt_wait_ns", "irq_injections",
    "directed_yield_attempted", "directed_yield_successful", "insn_emulation", "preemption_reported",
    "preemption_other", "signal_exits",
)  # fmt: skip


def _halt_poll_ns() -> int | None:
    try:
        return int(Path("/sys/module/kvm/parameters/halt_poll_ns").read_text().strip())
    except (OSError, ValueError):
        return None


def smp_experiment(runs: list[SmpRun], n: int) -> Experiment:
    """One two-vCPU program's runs: samples = the waiter's (vCPU 1's) host CPU ns per round, stages for
    the wall time and the worker's CPU; counts per vCPU (`vcpu0_IO`, `vcpu1_kvm_halt_exits`, ...)."""
    first = runs[0]
    counts: dict[str, int] = {"user_exits": sum(v.total_exits for v in first.vcpus)}
    for v in first.vcpus:
        p = f"vcpu{v.index}_"
        for r in ("IO", "HLT"):
            counts[p + r] = v.exits.get(r, 0)
        counts[p + "doorbell"] = v.io_ports.get(0x520, 0)
        counts[p + "user_exits"] = v.total_exits
        for key in SMP_KERNEL_STATS:
            if v.kernel_stats is not None and key in v.kernel_stats:
                counts[f"{p}kvm_{key}"] = v.kernel_stats[key]
    waiter = [r.vcpus[1].cpu_ns / n for r in runs]
    holder = [r.vcpus[0].cpu_ns / n for r in runs]
    wall = [r.wall_ns / n for r in runs]
    share = [r.vcpus[1].cpu_ns / r.vcpus[1].wall_ns for r in runs if r.vcpus[1].wall_ns]
    notes = [
        "samples: host CPU time of vCPU 1's thread (the waiter; CLOCK_THREAD_CPUTIME_ID, user + kernel) "
        "per round",
        "stages: wall = run wall time per round; holder_cpu = vCPU 0's CPU per round (it works "
        "between rounds); waiter_share = vCPU 1's CPU time / its wall time",
        "vcpuN_* counts: exits seen by this VMM on vCPU N, first run; vcpuN_kvm_*: its stats fd delta",
    ]
    return Experiment(
        unit="ns/round",
        samples=waiter,
        summary=summarize(waiter),
        provenance=Provenance(backend="kvm-api", accel="kvm", counter_source="vmm+stats_fd", notes=notes),
        provider="vmlab.kvmapi.smp",
        stages={
            "wall": Measurement(unit="ns/round", samples=wall, summary=summarize(wall)),
            "holder_cpu": Measurement(unit="ns/round", samples=holder, summary=summarize(holder)),
            "waiter_share": Measurement(unit="x", samples=share, summary=summarize(share)),
        },
        counts=counts,
        values={
            "rounds": n,
            "work_iterations": WORK,
            "ok": all(v.stop == "debug-exit" and v.exit_value == 0 for v in first.vcpus),
            **{f"vcpu{v.index}_exit_value": v.exit_value for v in first.vcpus},
            **{f"vcpu{v.index}_stop": v.stop for v in first.vcpus},
            "halt_poll_ns": _halt_poll_ns(),
            "kernel_stats_source": first.vcpus[0].kernel_stats_source,
        },
    )


def smp(params: SmpParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `smp`: the two-vCPU ping-pong with spinning, doorbell-halting and IPI-halting waiters."""
    from vmlab.kvmapi.smp import run_smp
    from vmlab.kvmapi.smp_guests import smp_builtin

    group: dict[str, Experiment] = {}
    for name in params.programs:
        program = smp_builtin(f"smp-{name}", params.n)
        runs = []
        for i in range(params.repeats):
            ctx.progress(f"kvm-api: smp-{name} ({params.n} rounds) run {i + 1}/{params.repeats}")
            runs.append(run_smp(program, limits=Limits(wall_s=params.timeout)))
        group[name] = smp_experiment(runs, params.n)
    return {"smp": group}
