"""`vmlab compare`: the same tiny userspace as a container, a gVisor sandbox and a system VM, side by side.

Three experiments, each with raw samples: start-up (every readiness stage, N cold starts, plus a
native process as baseline), memory overhead (idle after ready, and after a workload touching K MiB),
and traps (whatever the runtime's counter provider counts: VM exits, translation blocks, system calls
the host or the sandbox's kernel handled). Each kind runs on a runtime from the registry
(vmlab.backends); nothing here knows which: an experiment asks an instance for a capability and records
`skipped` with the reason when the runtime lacks it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from vmlab.backends.base import Instance, InstanceSpec
from vmlab.backends.capabilities import MIB, CapabilityMissing, MemorySample, TrapCounter
from vmlab.backends.context import RunContext
from vmlab.errors import BackendError, NotAvailable, PartialFailure, UsageError, VmlabError
from vmlab.experiments.process import time_process
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry, Measurement, Provenance
from vmlab.report.stats import summarize

log = logging.getLogger("vmlab")

EXPERIMENTS = ("startup", "memory", "traps")
KINDS = ("container", "sandbox", "vm")
PHASES = ("before", "idle", "io", "cpu", "after")


@dataclass(frozen=True)
class Workloads:
    """Shell commands run inside every kind. Only the I/O sink differs, and the runtime names it: a
    guest writes to its serial device (device I/O traps to the VMM), a container or sandbox to
    /dev/null (it has no device; the system call is its trap)."""

    io_lines: int = 3000
    cpu_iterations: int = 20000

    def io(self, sink: str) -> str:
        return f"dd if=/dev/zero bs=64 count={self.io_lines} 2>/dev/null | od -v > {sink}"

    def cpu(self) -> str:
        return f"i=0; while [ $i -lt {self.cpu_iterations} ]; do i=$((i+1)); done; echo $i"

    @staticmethod
    def touch(mib: int) -> str:
        """Fill K MiB of RAM-backed file system: tmpfs in both (/dev/shm if mounted, else the initramfs)."""
        return (
            f"d=/dev/shm; [ -w $d ] && grep -q ' /dev/shm ' /proc/mounts || d=/tmp; "
            f"dd if=/dev/zero of=$d/vmlab-touch bs=1048576 count={mib} 2>/dev/null && echo ok"
        )


@dataclass
class CompareOptions:
    runs: int = 5
    image: str = "tiny"
    accel: str = "auto"
    memory_mib: int | None = None
    only: tuple[str, ...] = EXPERIMENTS
    kinds: tuple[str, ...] = KINDS
    runtimes: tuple[str, ...] = ()  # runtime names overriding a kind's default (vmlab.backends)
    uri: str | None = None  # libvirt URI (-c); None: vmlab.host.libvirt's choice
    touch_mib: int = 32
    idle_s: float = 2.0
    ready_timeout_s: float = 120.0
    workloads: Workloads = field(default_factory=Workloads)

    def validate(self) -> RunContext:
        """Check every option once; the run context the runtimes are opened with."""
        if self.runs < 1:
            raise UsageError(f"--runs must be at least 1, not {self.runs}")
        unknown = [x for x in self.only if x not in EXPERIMENTS]
        if unknown or not self.only:
            raise UsageError(f"--only {','.join(self.only)}: choose from {','.join(EXPERIMENTS)}")
        bad_kinds = [k for k in self.kinds if k not in KINDS]
        if bad_kinds or not self.kinds:
            raise UsageError(f"kinds {','.join(self.kinds)}: choose from {','.join(KINDS)}")
        if self.touch_mib < 1 or self.idle_s < 0:
            raise UsageError("touch_mib must be >= 1 and idle_s >= 0")
        return RunContext.build(self.uri, self.runtimes, self.accel)


Progress = Callable[[str], None]


@dataclass
class _Sample:
    """What one cold start of one kind produced."""

    ladder: dict[str, float]
    guest_uptime_s: float | None
    accel: str
    accel_reason: str


@dataclass
class _KindResult:
    runtime: str
    samples: list[_Sample] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    traps: dict[str, Any] = field(default_factory=dict)


def _ladder_of(inst: Instance) -> dict[str, float]:
    t0 = inst.ladder["create_called"]
    return {k: v - t0 for k, v in inst.ladder.items()}


@contextlib.contextmanager
def _started(backend: Any, spec: InstanceSpec) -> Iterator[Instance]:
    """Create, start and wait; destroy on leaving, whatever happens (Ctrl-C included). A destroy that
    fails because the runtime's daemon is gone must not hide why the run stopped."""
    inst = backend.create(spec)
    try:
        inst.start()
        inst.wait_ready(spec.ready_timeout_s)
        yield inst
    except BaseException:
        try:
            inst.destroy()
        except VmlabError as e:  # the command that removes what is left, not the run's error
            log.warning("cleanup: %s", e.one_line())
        raise
    else:
        inst.destroy()


def _measure_kind(
    kind: str, opts: CompareOptions, ctx: RunContext, run_id: str, lab: str, progress: Progress
) -> _KindResult:
    """N cold starts of one kind; memory and traps measured on the last, still-running instance."""
    from vmlab.backends import open_runtime

    runtime = ctx.runtime_for(kind)
    result = _KindResult(runtime)
    backend = open_runtime(runtime, ctx)
    try:
        for i in range(opts.runs):
            spec = InstanceSpec(
                name=f"{kind[0]}{i}",
                run_id=run_id,
                image=opts.image,
                memory_mib=opts.memory_mib,
                accel=ctx.accel,
                lab=lab,
                ready_timeout_s=opts.ready_timeout_s,
                name_scope="run",  # two runs side by side on one host must not collide
            )
            progress(f"{kind} ({runtime}): cold start {i + 1}/{opts.runs}")
            with _started(backend, spec) as inst:
                result.samples.append(
                    _Sample(_ladder_of(inst), inst.guest_uptime(), inst.accel, inst.accel_reason)
                )
                last = i == opts.runs - 1
                if "memory" in opts.only:
                    result.memory.setdefault("idle", []).append(_memory_sample(inst))
                    if last and "skipped" not in result.memory["idle"][-1]:
                        progress(f"{kind}: memory after touching {opts.touch_mib} MiB")
                        inst.exec(opts.workloads.touch(opts.touch_mib), timeout=120).check()
                        result.memory["after"] = _memory_sample(inst)
                if "traps" in opts.only and last:
                    progress(f"{kind}: traps while idle {opts.idle_s:g}s, I/O loop, CPU loop")
                    result.traps = _traps(inst, opts)
    finally:
        with contextlib.suppress(VmlabError):
            backend.close()
    return result


# ---- memory -------------------------------------------------------------------------------------


def _memory_sample(inst: Instance) -> dict[str, Any]:
    try:
        return memory_values(inst.memory())
    except CapabilityMissing as e:
        return {"skipped": e.message, "fix": e.hint or ""}


def memory_values(sample: MemorySample) -> dict[str, Any]:
    """Overhead (the runtime's own resident memory) apart from what the workload or guest touched.

    A VM's RAM is one anonymous mapping of the configured size inside the VMM (found by size): its
    resident part is the guest's, the rest of the VMM's RSS is overhead. Elsewhere the runtime's
    processes are overhead and the runtime's charge to the workload (cgroup) is the workload's.
    """
    from vmlab.experiments.memory_maps import account

    out: dict[str, Any] = {"method": sample.method}
    overhead = 0
    workload = sample.workload_bytes or 0
    for proc in sample.processes:
        if sample.guest_ram_bytes and proc.maps:
            acc = account(list(proc.maps), sample.guest_ram_bytes // MIB, tcg=sample.code_cache)
            out.update({f"{proc.role}_{k}": v for k, v in acc.as_values().items()})
            overhead += acc.overhead_rss
            workload = acc.guest_ram_rss
        else:
            out.update({f"{proc.role}_rss": proc.rss, f"{proc.role}_uss": proc.uss})
            overhead += proc.rss
    if sample.guest_ram_bytes:
        out["guest_memory_bytes"] = sample.guest_ram_bytes
    out.update(sample.extra)
    out["overhead"] = overhead
    out["workload_rss"] = workload
    return out


def _memory_experiment(kind: str, mem: dict[str, Any], backend: str, accel: str | None) -> Experiment:
    idle = [s for s in mem.get("idle", []) if "skipped" not in s]
    overheads = [float(s["overhead"]) for s in idle]
    values: dict[str, float | int | str | bool | None] = {}
    notes: list[str] = []
    for phase in ("idle", "after"):
        sample = mem.get(phase)
        if isinstance(sample, list):
            sample = sample[-1] if sample else None
        for k, v in (sample or {}).items():
            if k == "method":
                notes = [f"{kind}: {v}"]
            elif k not in ("skipped", "fix"):
                values[f"{phase}_{k}"] = v
    skipped = next((s for s in mem.get("idle", []) if "skipped" in s), None)
    if skipped is not None:
        values.update({"skipped": True, "skipped_reason": skipped["skipped"], "fix": skipped["fix"]})
    return Experiment(
        unit="bytes",
        samples=overheads,
        summary=summarize(overheads) if overheads else None,
        provenance=Provenance(backend=backend, accel=accel, notes=notes),
        values=values,
    )


# ---- traps --------------------------------------------------------------------------------------


def _traps(inst: Instance, opts: CompareOptions) -> dict[str, Any]:
    """The traps of one instance, from whatever counter its runtime provides; a counter this user may
    not read is recorded as skipped, with the reason and the fix, and the run goes on."""
    try:
        counter = inst.trap_counter()
    except CapabilityMissing as e:
        return {"provider": None, "counts": {}, "headline": "", "skipped": e.message, "fix": e.hint or ""}
    try:
        return _count_phases(counter, inst.io_sink, opts)
    finally:
        counter.close()


def _count_phases(counter: TrapCounter, sink: str, opts: CompareOptions) -> dict[str, Any]:
    phases: dict[str, str | None] = {"idle": None, "io": opts.workloads.io(sink), "cpu": opts.workloads.cpu()}
    head = counter.headline
    counts: dict[str, int] = {}
    first = counter.snapshot()
    counts.update({f"before:{k}": v for k, v in (first or {head: 0}).items()})
    total = counts.get(f"before:{head}", 0)
    for phase, cmd in phases.items():
        got = counter.phase(phase, cmd, opts.idle_s)
        counts.update({f"{phase}:{k}": v for k, v in got.items()})
        total += got.get(head, 0)
    last = counter.snapshot() if first is not None else None
    counts.update({f"after:{k}": v for k, v in (last or {head: total}).items()})
    return {"provider": counter.provider, "counts": counts, "headline": head, "notes": list(counter.notes)}


def _headline_counts(counts: dict[str, int], headline: str) -> dict[str, int]:
    """Provider-neutral aliases (headline:before, headline:io, ...) so one lab check fits every provider."""
    return {
        f"headline:{phase}": counts[f"{phase}:{headline}"]
        for phase in PHASES
        if f"{phase}:{headline}" in counts
    }


def _traps_experiment(trp: dict[str, Any], backend: str, accel: str | None, progress: Progress) -> Experiment:
    notes = list(trp.get("notes", []))
    values: dict[str, float | int | str | bool | None] = {"headline_counter": trp["headline"]}
    if "skipped" in trp:  # not measurable as this user: say why and how, keep every other result
        values.update({"skipped": True, "skipped_reason": trp["skipped"], "fix": trp["fix"]})
        notes.append(f"skipped: {trp['skipped']} (fix: {trp['fix']})")
        progress(f"{backend}: traps skipped: {trp['skipped']} (fix: {trp['fix']})")
    return Experiment(
        unit="count",
        provider=trp["provider"],
        counts={**trp["counts"], **_headline_counts(trp["counts"], trp["headline"])},
        values=values,
        provenance=Provenance(backend=backend, accel=accel, counter_source=trp["provider"], notes=notes),
    )


# ---- assembly -----------------------------------------------------------------------------------


def _startup_experiment(samples: list[_Sample], backend: str) -> Experiment:
    stage_names = list(samples[0].ladder)
    stages: dict[str, Measurement] = {}
    for stage in stage_names:
        xs = [s.ladder[stage] for s in samples if stage in s.ladder]
        stages[stage] = Measurement(unit="s", samples=xs, summary=summarize(xs))
    ready_stage = stage_names[-1]
    ready = stages[ready_stage].samples
    first_stage = stage_names[1] if len(stage_names) > 1 else stage_names[0]
    overhead = stages[first_stage].samples
    values: dict[str, float | int | str | bool | None] = {
        "ready_stage": ready_stage,
        "harness_overhead_s": summarize(overhead).median,
        "harness_overhead_fraction": summarize(overhead).median / max(summarize(ready).median, 1e-9),
    }
    uptimes = [s.guest_uptime_s for s in samples if s.guest_uptime_s is not None]
    series: dict[str, list[float]] = {"harness_overhead_s": overhead}
    if uptimes:
        values["guest_uptime_at_marker_s"] = summarize(uptimes).median
        series["guest_uptime_at_marker_s"] = uptimes
    return Experiment(
        unit="s",
        samples=ready,
        summary=summarize(ready),
        stages=stages,
        provenance=Provenance(
            backend=backend, accel=samples[0].accel or None, accel_reason=samples[0].accel_reason or None
        ),
        values=values,
        series=series,
    )


def _native_startup(runs: int) -> Experiment:
    """The same first command as a plain host process: the floor neither VM nor container can beat."""
    samples, _ = time_process(["/bin/busybox", "true"] if _has_busybox() else ["/bin/true"], runs)
    return Experiment(
        unit="s",
        samples=samples,
        summary=summarize(samples),
        stages={"first_command": Measurement(unit="s", samples=samples, summary=summarize(samples))},
        provenance=Provenance(backend="native"),
        values={"ready_stage": "first_command"},
    )


def _has_busybox() -> bool:
    import os

    return os.access("/bin/busybox", os.X_OK)


class PartialResults(PartialFailure):
    """A runtime failed mid-compare; `partial` holds what the kinds before it measured."""

    def __init__(self, cause: VmlabError, experiments: dict[str, ExperimentEntry]) -> None:
        super().__init__(cause.message, hint=cause.hint, partial=dict(experiments))
        self.exit_code = cause.exit_code if isinstance(cause, BackendError) else BackendError.exit_code


def run_compare(
    opts: CompareOptions, run_id: str, lab: str = "system-vm", progress: Progress = lambda _m: None
) -> dict[str, ExperimentEntry]:
    """Measure every kind and return the report's experiments (startup, memory, traps).

    A kind whose runtime this host lacks (NotAvailable when opened) is recorded as skipped with the
    reason; a runtime that fails mid-way raises PartialResults carrying the finished kinds.
    """
    ctx = opts.validate()
    groups: dict[str, dict[str, Experiment]] = {"startup": {}, "memory": {}, "traps": {}}
    if "startup" in opts.only:
        groups["startup"]["native"] = _native_startup(max(opts.runs, 5))
    for kind in opts.kinds:
        try:
            res = _measure_kind(kind, opts, ctx, run_id, lab, progress)
        except NotAvailable as e:
            if isinstance(e, CapabilityMissing):
                raise
            progress(f"{kind}: skipped: {e.one_line()}")
            groups["startup" if "startup" in opts.only else opts.only[0]][kind] = _skipped_kind(kind, e)
            continue
        except VmlabError as e:
            raise PartialResults(e, _assembled(groups)) from e
        accel = res.samples[0].accel or None
        if "startup" in opts.only:
            groups["startup"][kind] = _startup_experiment(res.samples, res.runtime)
        if "memory" in opts.only:
            groups["memory"][kind] = _memory_experiment(kind, res.memory, res.runtime, accel)
        if "traps" in opts.only:
            groups["traps"][kind] = _traps_experiment(res.traps, res.runtime, accel, progress)
    return _assembled(groups)


def _assembled(groups: dict[str, dict[str, Experiment]]) -> dict[str, ExperimentEntry]:
    return {key: dict(group) for key, group in groups.items() if group}


def _skipped_kind(kind: str, e: NotAvailable) -> Experiment:
    return Experiment(
        unit="s",
        values={"skipped": True, "skipped_reason": e.message, "fix": e.hint or ""},
        provenance=Provenance(notes=[f"{kind} not measured: {e.one_line()}"]),
    )


ExperimentName = Literal["startup", "memory", "traps"]
KindName = Literal["container", "sandbox", "vm"]


def _every_experiment() -> list[ExperimentName]:
    return ["startup", "memory", "traps"]


def _every_kind() -> list[KindName]:
    return ["container", "sandbox", "vm"]


class CompareParams(StepParams):
    """The compare step's parameters (CompareOptions, as lab.toml and --set give them)."""

    runs: int = Field(5, ge=1, le=100)
    image: str = "tiny"
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    memory_mib: int | None = Field(None, ge=16)
    only: list[ExperimentName] = Field(default_factory=_every_experiment)
    kinds: list[KindName] = Field(default_factory=_every_kind)
    runtimes: list[str] = Field(default_factory=list)
    touch_mib: int = Field(32, ge=1)
    io_lines: int = Field(Workloads.io_lines, ge=1, le=1_000_000)  # 64-byte blocks of the I/O loop
    idle_s: float = Field(2.0, ge=0)
    ready_timeout_s: float = Field(120.0, gt=0)

    def options(self, uri: str | None = None) -> CompareOptions:
        fields = self.model_dump(exclude={"io_lines"})
        fields["only"], fields["kinds"] = tuple(self.only), tuple(self.kinds)
        fields["runtimes"] = tuple(self.runtimes)
        return CompareOptions(**fields, uri=uri, workloads=Workloads(io_lines=self.io_lines))


def lab_step(params: CompareParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step runner for labs/system-vm (and `vmlab compare`); `-c URI` arrives as ctx.options["connect"].

    When a runtime fails mid-way, what the finished kinds measured travels on the error
    (PartialResults) and the pipeline keeps it in the report beside the step's error.
    """
    uri = RunContext.from_options(ctx.options).uri
    result = run_compare(params.options(uri), ctx.run_id, ctx.lab, ctx.progress)
    for group in result.values():
        vm = group.get("vm") if isinstance(group, dict) else None
        if vm is not None and vm.provenance.accel:
            ctx.use_accel(vm.provenance.accel, vm.provenance.accel_reason or "")
            break
    return result
