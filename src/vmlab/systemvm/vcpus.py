"""The `vcpus` step of system-vm: boot time and a parallel CPU-bound workload's speedup against the
number of vCPUs, beside a container given the same CPU quota (`docker run --cpus`).

The workload is L busy loops (busybox sh, fixed iterations each) started at once, L = the largest
vCPU count measured, timed by the instance's own clock (/proc/uptime, 10 ms ticks) and by the host
(wall time of the exec). Speedup at v vCPUs = elapsed with 1 / elapsed with v: the same work spread
over more CPUs.

Under TCG, whether the vCPUs can run at once depends on QEMU's threading: multi-threaded TCG (MTTCG,
QEMU's default for an x86 guest on an x86 host) gives each vCPU a thread of its own ("CPU n/TCG");
single-threaded TCG runs every vCPU in one thread, round-robin ("ALL CPUs/TCG"), and cannot speed up.
libvirt starts QEMU with `-name ...,debug-threads=on`, so the thread names in /proc/PID/task/*/comm say
which one runs. Even with MTTCG the speedup is bounded by the host's free cores, and lower than a
container's: the translated code is shared by all vCPUs (a write to a page that holds translated code
invalidates it for every vCPU), atomic guest instructions are emulated, and memory-ordering helpers and
the exits to QEMU's main loop (timers, interrupts) take a lock the vCPU threads share.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from vmlab.backends.base import Instance
from vmlab.backends.context import Accel, RunContext
from vmlab.errors import BackendError, NotAvailable, VmlabError
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry, Provenance
from vmlab.systemvm.instances import started
from vmlab.systemvm.params import run_spec

KindName = Literal["vm", "container"]
_TCG_VCPU = re.compile(r"^CPU (\d+)/TCG$")
_KVM_VCPU = re.compile(r"^CPU (\d+)/KVM$")


def _both() -> list[KindName]:
    return ["vm", "container"]


def _counts() -> list[int]:
    return [1, 2, 4]


class VcpusParams(StepParams):
    """The vcpus step's parameters; vCPU counts above the host's CPUs are left out (and said so)."""

    vcpus: list[int] = Field(default_factory=_counts, min_length=1)
    iterations: int = Field(150000, ge=1, le=100_000_000)  # per busy loop
    loops: int | None = Field(None, ge=1, le=64)  # None: the largest vCPU count measured
    repeats: int = Field(2, ge=1, le=20)
    kinds: list[KindName] = Field(default_factory=_both)
    runtimes: list[str] = Field(default_factory=list)
    image: str = "tiny"
    accel: Accel = "auto"
    ready_timeout_s: float = Field(180.0, gt=0)


def workload(loops: int, iterations: int) -> str:
    """L busy loops at once, timed by the instance's clock: prints "<start> <end>" from /proc/uptime."""
    busy = f"k=0; while [ $k -lt {iterations} ]; do k=$((k+1)); done"
    return (
        "read s _ < /proc/uptime; "
        f"j=0; while [ $j -lt {loops} ]; do ( {busy} ) & j=$((j+1)); done; wait; "
        'read e _ < /proc/uptime; echo "$s $e"'
    )


def parse_elapsed(stdout: str) -> float:
    """Seconds between the two /proc/uptime readings the workload prints."""
    parts = stdout.split()
    try:
        start, end = float(parts[-2]), float(parts[-1])
    except (IndexError, ValueError):
        raise BackendError(f"the vcpus workload printed {stdout.strip()[:80]!r}, not two uptimes") from None
    return round(end - start, 3)


def threading_of(thread_names: list[str]) -> tuple[str, int]:
    """QEMU's vCPU threading from its thread names: ("multi", n) for MTTCG, ("single", 1) for
    round-robin TCG, ("kvm", n) under KVM, ("unknown", 0) without named threads."""
    tcg = [n for n in thread_names if _TCG_VCPU.match(n)]
    if tcg:
        return "multi", len(tcg)
    if any(n == "ALL CPUs/TCG" for n in thread_names):
        return "single", 1
    kvm = [n for n in thread_names if _KVM_VCPU.match(n)]
    if kvm:
        return "kvm", len(kvm)
    return "unknown", 0


def thread_names(pid: int) -> list[str]:
    names = []
    for comm in Path(f"/proc/{pid}/task").glob("*/comm"):
        with contextlib.suppress(OSError):
            names.append(comm.read_text().strip())
    return sorted(names)


@dataclass
class _Point:
    """One vCPU count of one kind."""

    vcpus: int
    elapsed: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    boot_s: float | None = None
    guest_uptime_s: float | None = None
    guest_cpus: int | None = None
    threading: str = ""
    vcpu_threads: int = 0


def _measure_point(inst: Instance, v: int, params: VcpusParams, loops: int) -> _Point:
    point = _Point(v)
    if "first_command" in inst.ladder:
        point.boot_s = round(inst.ladder["first_command"] - inst.ladder["create_called"], 3)
    point.guest_uptime_s = inst.guest_uptime()
    res = inst.exec("grep -c ^processor /proc/cpuinfo", timeout=60)
    with contextlib.suppress(ValueError):
        point.guest_cpus = int(res.stdout.strip())
    pid = inst.pid() if inst.kind == "vm" else None
    if pid is not None:
        point.threading, point.vcpu_threads = threading_of(thread_names(pid))
    cmd = workload(loops, params.iterations)
    for _ in range(params.repeats):
        t0 = time.monotonic()
        res = inst.exec(cmd, timeout=900)
        wall = time.monotonic() - t0
        if not res.ok:
            raise BackendError(
                f"the vcpus workload in {inst.name} exited {res.rc}: {res.stderr.strip()[:120]}"
            )
        point.elapsed.append(parse_elapsed(res.stdout))
        point.wall.append(round(wall, 3))
    return point


def measure_kind(
    kind: KindName, counts: list[int], params: VcpusParams, rctx: RunContext, ctx: StepContext, loops: int
) -> tuple[str, str | None, str | None, list[_Point]]:
    from vmlab.backends import open_runtime

    runtime = rctx.runtime_for(kind)
    backend = open_runtime(runtime, rctx)
    points: list[_Point] = []
    accel: str | None = None
    reason: str | None = None
    try:
        for v in counts:
            ctx.progress(f"vcpus: {kind} ({runtime}) with {v} CPU(s): {loops} loops x {params.iterations}")
            spec = run_spec(f"cpu-{kind[0]}{v}", ctx.run_id, ctx.lab, rctx, params, vcpus=v)
            with started(backend, spec) as inst:
                accel, reason = inst.accel or None, inst.accel_reason or None
                points.append(_measure_point(inst, v, params, loops))
    finally:
        with contextlib.suppress(VmlabError):
            backend.close()
    return runtime, accel, reason, points


def experiment_of(
    kind: str,
    runtime: str,
    accel: str | None,
    reason: str | None,
    points: list[_Point],
    loops: int,
    notes: list[str],
) -> Experiment:
    values: dict[str, float | int | str | bool | None] = {
        "loops": loops,
        "vcpus": ",".join(str(p.vcpus) for p in points),
    }
    counts: dict[str, int] = {"loops": loops}
    series: dict[str, list[float]] = {}
    base = statistics.median(points[0].elapsed) if points and points[0].vcpus == 1 else None
    for p in points:
        med = round(statistics.median(p.elapsed), 3)
        values[f"elapsed_s:{p.vcpus}"] = med
        values[f"wall_s:{p.vcpus}"] = round(statistics.median(p.wall), 3)
        series[f"elapsed_s:{p.vcpus}"] = p.elapsed
        if base is not None and med > 0:
            values[f"speedup:{p.vcpus}"] = round(base / med, 3)
            values[f"efficiency:{p.vcpus}"] = round(base / med / p.vcpus, 3)
        if p.boot_s is not None:
            values[f"boot_s:{p.vcpus}"] = p.boot_s
        if p.guest_uptime_s is not None and kind == "vm":
            values[f"guest_uptime_at_marker_s:{p.vcpus}"] = p.guest_uptime_s
        if p.guest_cpus is not None:
            counts[f"cpus_seen:{p.vcpus}"] = p.guest_cpus
        if p.threading:
            values["threading"] = p.threading
            counts[f"vcpu_threads:{p.vcpus}"] = p.vcpu_threads
    if kind == "vm" and "threading" in values:
        values["mttcg"] = values["threading"] == "multi"
    last = points[-1]
    return Experiment(
        unit="s",
        samples=list(last.elapsed),
        summary=None,
        counts=counts,
        values=values,
        series=series,
        provenance=Provenance(backend=runtime, accel=accel, accel_reason=reason, notes=notes),
    )


def vcpu_counts(wanted: list[int], host_cpus: int) -> tuple[list[int], list[int]]:
    """The counts to measure (sorted, 1 always first) and those left out for want of host CPUs."""
    chosen = sorted({1, *[v for v in wanted if v <= host_cpus]})
    dropped = sorted({v for v in wanted if v > host_cpus})
    return chosen, dropped


def lab_step(params: VcpusParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step runner: `{"vcpus": {"vm": ..., "container": ...}}`."""
    host_cpus = os.cpu_count() or 1
    counts, dropped = vcpu_counts(params.vcpus, host_cpus)
    loops = params.loops or max(counts)
    notes = (
        [f"left out: {', '.join(map(str, dropped))} vCPUs (this host has {host_cpus} CPUs)"]
        if dropped
        else []
    )
    rctx = RunContext.build(ctx.run.uri, tuple(params.runtimes), params.accel)
    group: dict[str, Experiment] = {}
    for kind in params.kinds:
        load = os.getloadavg()[0]  # other work on the host's cores bounds every speedup measured
        try:
            runtime, accel, reason, points = measure_kind(kind, counts, params, rctx, ctx, loops)
        except NotAvailable as e:
            ctx.progress(f"vcpus: {kind}: skipped: {e.one_line()}")
            group[kind] = Experiment(
                unit="s",
                values={"skipped": True, "skipped_reason": e.message, "fix": e.hint or ""},
                provenance=Provenance(notes=[f"{kind} not measured: {e.one_line()}"]),
            )
            continue
        kind_notes = list(notes)
        if kind == "container":
            kind_notes.append(
                "CPU quota per count: docker run --cpus=<count> (CFS quota), all host CPUs visible"
            )
        group[kind] = experiment_of(kind, runtime, accel, reason, points, loops, kind_notes)
        group[kind].values["host_cpus"] = host_cpus
        group[kind].values["host_load_1m"] = round(load, 2)
        if kind == "vm" and accel:
            ctx.use_accel(accel, reason or "")
    return {"vcpus": group}
