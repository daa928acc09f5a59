"""The `devices` step of system-vm: who handles each phase's traps, per kind, with the provider named.

The same three phases as the traps experiment of `compare` (idle, the I/O loop, the CPU loop) run in a
guest, a container and a gVisor sandbox, each counted by what its runtime offers:

- guest under TCG: device accesses, per device region, reads and writes, from QEMU's trace events
  (vmlab.systemvm.devtrace) switched on only around each phase: there is no VM exit under TCG, but every
  access to an emulated device still goes to QEMU's device model, the part of trap-and-emulate that is
  left;
- guest under KVM: KVM's exit counters (the runtime's own trap counter);
- sandbox: the system calls gVisor's Sentry handled; container: the system calls strace counted.

The I/O loop is small here (default 16 blocks of 64 bytes): under TCG every byte to the serial port is
one traced write. Its serial writes are exact: `dd bs=64 count=N | od -v` prints 4 lines of 64 bytes per
block and a last line of 8, and the tty turns each "\\n" into "\\r\\n", so the port's transmit register
takes 4N x 65 + 9 = 260N + 9 bytes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from vmlab.backends.base import Instance
from vmlab.backends.capabilities import CapabilityMissing, TrapCounter
from vmlab.backends.context import Accel, RunContext
from vmlab.errors import BackendError, NotAvailable, VmlabError
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry, Provenance
from vmlab.systemvm import devtrace
from vmlab.systemvm.instances import domain_log, started
from vmlab.systemvm.params import Workloads, run_spec

log = logging.getLogger("vmlab")

KindName = Literal["container", "sandbox", "vm"]
PHASES = ("idle", "io", "cpu")
# What each kind's headline counter is, for the table and plot (the provider says who counted it).
MEASURES = {
    "qemu-trace": "device accesses (TCG)",
    "kvm": "VM exits (KVM)",
    "gVisor": "Sentry-handled calls",
    "strace": "system calls",
}


def measure_of(provider: str | None) -> str:
    for needle, what in MEASURES.items():
        if provider and needle in provider:
            return what
    return "count"


def expected_serial_bytes(blocks: int) -> int:
    """Bytes the I/O loop sends to the serial port (module docstring): 260 per block, 9 for the end."""
    lines = 4 * blocks  # od -v: 16 input bytes per line, 64 per block
    return lines * (63 + 2) + (7 + 2)  # 7-digit address + 8 x " 000000", then "\r\n"; the last: address


def _all_kinds() -> list[KindName]:
    return ["vm", "container", "sandbox"]


class DevicesParams(StepParams):
    """The devices step's parameters (lab.toml `[experiments.devices]`, `--set devices.KEY=VALUE`)."""

    kinds: list[KindName] = Field(default_factory=_all_kinds)
    runtimes: list[str] = Field(default_factory=list)
    image: str = "tiny"
    accel: Accel = "auto"
    idle_s: float = Field(3.0, ge=0.5, le=60)
    io_blocks: int = Field(16, ge=1, le=200)  # 64-byte blocks; under TCG each output byte is traced
    cpu_iterations: int = Field(20000, ge=1, le=10_000_000)
    ready_timeout_s: float = Field(120.0, gt=0)


class DeviceAccessCounter:
    """A TrapCounter for a guest under TCG: device accesses per region while a phase runs.

    `snapshot()` is None: the events are off between phases, so there is no running total to read."""

    provider = devtrace.PROVIDER
    headline = "total"

    def __init__(self, inst: Any) -> None:
        path = devtrace.readable_log(domain_log(inst.resource))
        if path is None:
            raise CapabilityMissing(
                f"{inst.name}: QEMU's domain log (where its trace lines go) is not readable here",
                hint="run on the libvirt host as the user libvirt runs QEMU for (root for qemu:///system)",
            )
        self.inst = inst
        self.tail = devtrace.LogTail(path)
        self.notes = [
            "the guest runs under TCG: no VM exits exist; counted are the accesses to emulated device "
            "regions (QEMU trace events memory_region_ops_read/_write, switched on only during each "
            f"phase, from {path})"
        ]
        self.durations: dict[str, float] = {}

    def snapshot(self) -> dict[str, int] | None:
        return None

    def phase(self, name: str, command: str | None, idle_s: float) -> dict[str, int]:
        self.tail.mark()
        t0 = time.monotonic()
        try:
            devtrace.switch(self.inst.monitor, True)
        except devtrace.TraceUnavailable as e:
            raise CapabilityMissing(str(e), hint="a QEMU built with the log trace backend") from e
        try:
            if command is None:
                time.sleep(idle_s)
            else:
                res = self.inst.exec(command, timeout=300)
                if not res.ok:
                    raise BackendError(f"{name} workload in {self.inst.name} exited {res.rc}: {res.stderr}")
                # the tty drains what it buffered after the program ended: wait for the port to fall quiet
                devtrace.settle(lambda: self.tail.read_new().count("name 'serial'"))
        finally:
            devtrace.switch(self.inst.monitor, False)
        self.durations[name] = round(time.monotonic() - t0, 3)
        devtrace.wait_flushed(self.tail)
        counts = devtrace.count_accesses(self.tail.read_new().splitlines())
        if counts["total"] == 0 and command is None:
            # a TCG guest's timer ticks whenever it idles: no line at all means no trace output
            raise CapabilityMissing(
                f"{self.inst.name}: QEMU accepted 'trace-event' but wrote no trace line in "
                f"{idle_s:g} s of idle (a QEMU without the log trace backend?)",
                hint="`qemu-system-x86_64 -trace help` must list memory_region_ops_write, with QEMU "
                "built with --enable-trace-backends=log (Debian's is)",
            )
        return counts

    def close(self) -> None:
        """The events are off after every phase: nothing to release."""


@dataclass
class _Measured:
    runtime: str
    accel: str | None
    accel_reason: str | None
    provider: str | None
    headline: str
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)


def counter_for(inst: Instance) -> TrapCounter:
    """Device accesses for a TCG guest; every other instance's own trap counter (KVM exits, Sentry
    calls, strace)."""
    if inst.kind == "vm" and inst.accel != "kvm":
        return DeviceAccessCounter(inst)
    return inst.trap_counter()


def _phases(w: Workloads, sink: str) -> dict[str, str | None]:
    return {"idle": None, "io": w.io(sink), "cpu": w.cpu()}


def measure_kind(kind: str, params: DevicesParams, rctx: RunContext, ctx: StepContext) -> _Measured:
    from vmlab.backends import open_runtime

    runtime = rctx.runtime_for(kind)
    backend = open_runtime(runtime, rctx)
    w = Workloads(io_lines=params.io_blocks, cpu_iterations=params.cpu_iterations)
    spec = run_spec(f"dev-{kind}", ctx.run_id, ctx.lab, rctx, params)
    try:
        ctx.progress(f"devices: {kind} ({runtime}): starting")
        with started(backend, spec) as inst:
            counter = counter_for(inst)
            out = _Measured(
                runtime, inst.accel or None, inst.accel_reason or None, counter.provider, counter.headline
            )
            out.notes = list(counter.notes)
            try:
                before = counter.snapshot()
                for phase, cmd in _phases(w, inst.io_sink).items():
                    ctx.progress(f"devices: {kind}: phase {phase}")
                    got = counter.phase(phase, cmd, params.idle_s)
                    out.counts.update({f"{phase}:{k}": v for k, v in got.items()})
                after = counter.snapshot()
                if before is not None and after is not None:
                    out.counts.update({f"before:{k}": v for k, v in before.items()})
                    out.counts.update({f"after:{k}": v for k, v in after.items()})
            finally:
                counter.close()
            out.durations = dict(getattr(counter, "durations", {}))
            return out
    finally:
        with contextlib.suppress(VmlabError):
            backend.close()


def experiment_of(kind: str, m: _Measured, params: DevicesParams) -> Experiment:
    """One kind's counts, with `headline:<phase>` aliases so one check and one plot fit every provider."""
    counts = dict(m.counts)
    counts.update(
        {f"headline:{p}": counts[f"{p}:{m.headline}"] for p in PHASES if f"{p}:{m.headline}" in counts}
    )
    values: dict[str, float | int | str | bool | None] = {
        "headline_counter": m.headline,
        "measure": measure_of(m.provider),
        "io_blocks": params.io_blocks,
        "cpu_iterations": params.cpu_iterations,
        "idle_s": params.idle_s,
    }
    if m.provider == devtrace.PROVIDER:
        regions = devtrace.regions_of(counts)
        values["regions"] = ",".join(regions)
        values["regions_seen"] = len(regions)
        values["expected_serial_thr_writes"] = expected_serial_bytes(params.io_blocks)
    values.update({f"traced_s_{p}": s for p, s in m.durations.items()})
    return Experiment(
        unit="count",
        provider=m.provider,
        counts=counts,
        values=values,
        provenance=Provenance(
            backend=m.runtime,
            accel=m.accel,
            accel_reason=m.accel_reason,
            counter_source=m.provider,
            notes=m.notes,
        ),
    )


def _skipped(kind: str, e: NotAvailable) -> Experiment:
    return Experiment(
        unit="count",
        values={"skipped": True, "skipped_reason": e.message, "fix": e.hint or ""},
        provenance=Provenance(notes=[f"{kind} not measured: {e.one_line()}"]),
    )


def lab_step(params: DevicesParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step runner: `{"devices": {kind: Experiment}}`; a kind this host cannot run (or count) is recorded
    as skipped with the reason, and the others are still measured."""
    rctx = RunContext.build(ctx.run.uri, tuple(params.runtimes), params.accel)
    group: dict[str, Experiment] = {}
    for kind in params.kinds:
        try:
            m = measure_kind(kind, params, rctx, ctx)
        except NotAvailable as e:
            ctx.progress(f"devices: {kind}: skipped: {e.one_line()}")
            group[kind] = _skipped(kind, e)
            continue
        group[kind] = experiment_of(kind, m, params)
        if kind == "vm" and m.accel:
            ctx.use_accel(m.accel, m.accel_reason or "")
    return {"devices": group}
