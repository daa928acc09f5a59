"""`vmlab compare`: the same tiny userspace as a libvirt guest and as a Docker container, side by side.

Three experiments, each with raw samples: start-up (every readiness stage, N cold starts, plus a
native process as baseline), memory overhead (idle after ready, and after a workload touching K MiB),
and traps (VM exits where KVM runs the guest; under TCG the binary translator's counters instead; for
the container, the system calls its workload makes).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from vmlab.backends.base import ExecResult, Instance, InstanceSpec
from vmlab.errors import BackendError, NotAvailable, UsageError
from vmlab.experiments import counters
from vmlab.experiments.process import time_process
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry, Measurement, Provenance
from vmlab.report.stats import summarize

EXPERIMENTS = ("startup", "memory", "traps")
KINDS = ("container", "vm")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Workloads:
    """Shell commands run inside both kinds. Only the I/O sink differs: the guest writes to its serial
    device (device I/O traps to the VMM), the container to /dev/null (it has no device; the system call
    is its trap)."""

    io_lines: int = 3000
    cpu_iterations: int = 20000

    def io(self, kind: str) -> str:
        sink = "/dev/ttyS0" if kind == "vm" else "/dev/null"
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
    touch_mib: int = 32
    idle_s: float = 2.0
    ready_timeout_s: float = 120.0
    workloads: Workloads = field(default_factory=Workloads)

    def validate(self) -> None:
        if self.runs < 1:
            raise UsageError(f"--runs must be at least 1, not {self.runs}")
        unknown = [x for x in self.only if x not in EXPERIMENTS]
        if unknown or not self.only:
            raise UsageError(f"--only {','.join(self.only)}: choose from {','.join(EXPERIMENTS)}")
        bad_kinds = [k for k in self.kinds if k not in KINDS]
        if bad_kinds or not self.kinds:
            raise UsageError(f"kinds {','.join(self.kinds)}: choose from {','.join(KINDS)}")
        if self.accel not in ("auto", "kvm", "tcg"):
            raise UsageError(f"--accel {self.accel}: choose auto, kvm or tcg")
        if self.touch_mib < 1 or self.idle_s < 0:
            raise UsageError("touch_mib must be >= 1 and idle_s >= 0")


Progress = Callable[[str], None]


@dataclass
class _Sample:
    """What one cold start of one kind produced."""

    ladder: dict[str, float]
    guest_uptime_s: float | None
    accel: str
    accel_reason: str


def _ladder_of(inst: Instance) -> dict[str, float]:
    t0 = inst.ladder["create_called"]
    return {k: v - t0 for k, v in inst.ladder.items()}


@contextlib.contextmanager
def _started(backend: Any, spec: InstanceSpec) -> Iterator[Instance]:
    """Create, start and wait; destroy on leaving, whatever happens (Ctrl-C included)."""
    inst = backend.create(spec)
    try:
        inst.start()
        inst.wait_ready(spec.ready_timeout_s)
        yield inst
    finally:
        inst.destroy()


def _measure_kind(
    kind: str, opts: CompareOptions, run_id: str, lab: str, progress: Progress
) -> tuple[list[_Sample], dict[str, Any], dict[str, Any]]:
    """N cold starts of one kind; memory and traps measured on the last, still-running instance."""
    from vmlab.backends import get_backend

    backend = get_backend(kind)
    samples: list[_Sample] = []
    memory: dict[str, Any] = {}
    traps: dict[str, Any] = {}
    try:
        for i in range(opts.runs):
            spec = InstanceSpec(
                name=f"{kind[0]}{i}",
                run_id=run_id,
                image=opts.image,
                memory_mib=opts.memory_mib,
                accel=opts.accel,  # type: ignore[arg-type]
                lab=lab,
                ready_timeout_s=opts.ready_timeout_s,
            )
            progress(f"{kind}: cold start {i + 1}/{opts.runs}")
            with _started(backend, spec) as inst:
                samples.append(
                    _Sample(
                        _ladder_of(inst), getattr(inst, "guest_uptime_s", None), inst.accel, inst.accel_reason
                    )
                )
                last = i == opts.runs - 1
                if "memory" in opts.only:
                    memory.setdefault("idle", []).append(_memory_sample(inst, spec))
                    if last:
                        progress(f"{kind}: memory after touching {opts.touch_mib} MiB")
                        inst.exec(opts.workloads.touch(opts.touch_mib), timeout=120).check()
                        memory["after"] = _memory_sample(inst, spec)
                if "traps" in opts.only and last:
                    progress(f"{kind}: traps while idle {opts.idle_s:g}s, I/O loop, CPU loop")
                    traps = _traps(inst, opts)
    finally:
        backend.close()
    return samples, memory, traps


# ---- memory -------------------------------------------------------------------------------------


def _memory_sample(inst: Instance, spec: InstanceSpec) -> dict[str, Any]:
    stats = inst.stats()
    if inst.kind == "vm":
        return _vm_memory(inst, stats)
    return _container_memory(inst, stats)


def _vm_memory(inst: Instance, stats: dict[str, Any]) -> dict[str, Any]:
    import psutil

    from vmlab.experiments.memory_maps import account, from_psutil

    pid = inst.pid()
    if pid is None:
        raise BackendError(f"{inst.name}: no QEMU process to measure")
    guest_mib = int((stats.get("libvirt_info") or {}).get("max_memory_kib", 0)) // 1024
    maps = from_psutil(psutil.Process(pid).memory_maps(grouped=False))
    acc = account(maps, guest_mib, tcg=inst.accel == "tcg")
    out: dict[str, Any] = {
        "overhead": acc.overhead_rss,
        "workload_rss": acc.guest_ram_rss,
        **{f"qemu_{k}": v for k, v in acc.as_values().items()},
        "guest_memory_bytes": guest_mib * MIB,
    }
    for k, v in (stats.get("libvirt_memory_stats") or {}).items():
        if isinstance(v, int):
            out[f"libvirt_{k}"] = v
    return out


def _container_memory(inst: Instance, stats: dict[str, Any]) -> dict[str, Any]:
    """cgroup usage is the workload's memory; the runtime's overhead is its shim process."""
    import psutil

    pid = inst.pid()
    shim_rss = shim_uss = 0
    if pid is not None:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(pid).parent()
            if parent is not None and "shim" in parent.name():
                full = parent.memory_full_info()
                shim_rss, shim_uss = full.rss, full.uss
    cgroup = stats.get("cgroup_memory") or {}
    usage = int(cgroup.get("usage") or 0)
    cache = int((cgroup.get("stats") or {}).get("cache") or 0)
    return {
        "overhead": shim_rss,
        "workload_rss": usage,
        "shim_rss": shim_rss,
        "shim_uss": shim_uss,
        "cgroup_usage": usage,
        "cgroup_cache": cache,
    }


def _memory_experiment(kind: str, mem: dict[str, Any], backend: str, accel: str | None) -> Experiment:
    idle = mem.get("idle", [])
    overheads = [float(s["overhead"]) for s in idle]
    values: dict[str, float | int | str | bool | None] = {}
    for phase in ("idle", "after"):
        sample = mem.get(phase)
        if isinstance(sample, list):
            sample = sample[-1] if sample else None
        for k, v in (sample or {}).items():
            values[f"{phase}_{k}"] = v
    return Experiment(
        unit="bytes",
        samples=overheads,
        summary=summarize(overheads),
        provenance=Provenance(
            backend=backend,
            accel=accel,
            notes=[
                "vm: QEMU RSS minus the guest-RAM mapping's resident pages (psutil memory maps)"
                if kind == "vm"
                else "container: the runtime's shim process RSS; cgroup usage is the workload's own memory"
            ],
        ),
        values=values,
    )


# ---- traps --------------------------------------------------------------------------------------


def _traps(inst: Instance, opts: CompareOptions) -> dict[str, Any]:
    """The traps of one kind; a counter this user may not read is recorded as skipped, with the reason
    and the fix, and the run goes on (a normal user may not ptrace root's processes or read debugfs)."""
    try:
        if inst.kind == "container":
            return _container_traps(inst, opts)
        return _vm_traps(inst, opts)
    except NotAvailable as e:
        return {"provider": None, "counts": {}, "headline": "", "skipped": e.message, "fix": e.hint or ""}


def _run_phase(inst: Instance, command: str | None, idle_s: float) -> ExecResult | None:
    if command is None:
        time.sleep(idle_s)
        return None
    return inst.exec(command, timeout=300).check()


def _vm_traps(inst: Instance, opts: CompareOptions) -> dict[str, Any]:
    read, provider, headline = _vm_counter_reader(inst)
    phases: dict[str, str | None] = {"idle": None, "io": opts.workloads.io("vm"), "cpu": opts.workloads.cpu()}
    counts: dict[str, int] = {}
    first = read()
    counts.update({f"before:{k}": v for k, v in first.items()})
    last = first
    for phase, cmd in phases.items():
        _run_phase(inst, cmd, opts.idle_s)
        now = read()
        counts.update({f"{phase}:{k}": v for k, v in counters.delta(now, last).items()})
        last = now
    counts.update({f"after:{k}": v for k, v in last.items()})
    return {"provider": provider, "counts": counts, "headline": headline}


def _vm_counter_reader(inst: Instance) -> tuple[Callable[[], dict[str, int]], str, str]:
    """Pick the provider: KVM exit statistics when the guest runs under KVM, else TCG's `info jit`."""
    if inst.accel == "kvm":
        pid = inst.pid()
        if pid is not None and counters.read_debugfs_vm(pid) is not None:
            return (lambda: counters.read_debugfs_vm(pid) or {}), counters.DEBUGFS_PROVIDER, "exits"
        stats_fn = getattr(inst, "domain_stats", None)
        if callable(stats_fn):
            return (
                (lambda: counters.parse_libvirt_vm_stats(stats_fn())),
                counters.LIBVIRT_VM_PROVIDER,
                "exits",
            )
        import os

        root = os.geteuid() == 0
        raise NotAvailable(
            f"{inst.name} runs under KVM but no exit counter is readable"
            + ("" if root else " (debugfs is readable by root only)"),
            hint="mount -t debugfs none /sys/kernel/debug"
            + ("" if root else ", then run the traps experiment as root"),
        )
    monitor = getattr(inst, "monitor", None)
    if not callable(monitor):
        raise BackendError(f"{inst.name}: this backend offers no QEMU monitor for 'info jit'")
    return (lambda: counters.parse_info_jit(monitor("info jit"))), counters.JIT_PROVIDER, "tb_count"


def _container_traps(inst: Instance, opts: CompareOptions) -> dict[str, Any]:
    from vmlab.experiments.syscalls import IdleNotMeasured, count_exec_syscalls, count_idle_syscalls, plan

    how = plan(inst.resource)
    counts: dict[str, int] = {"before:total": 0}
    notes = [f"system calls counted {'from the host' if how.where == 'host' else 'inside'}: {how.reason}"]
    pid = inst.pid()
    try:
        idle = count_idle_syscalls(pid or 0, opts.idle_s, how.where, inst.resource) if pid else {"total": 0}
    except IdleNotMeasured as e:
        idle = {}
        notes.append(f"idle phase not measured: {e.message} (fix: {e.hint})")
    counts.update({f"idle:{k}": v for k, v in idle.items()})
    total = idle.get("total", 0)
    for phase, cmd in (("io", opts.workloads.io("container")), ("cpu", opts.workloads.cpu())):
        result = count_exec_syscalls(inst.resource, cmd, where=how.where)
        if result.rc != 0:
            raise BackendError(f"{phase} workload in {inst.name} exited {result.rc}")
        counts.update({f"{phase}:{k}": v for k, v in result.counts.items()})
        total += result.counts.get("total", 0)
    counts["after:total"] = total
    return {"provider": how.provider, "counts": counts, "headline": "total", "notes": notes}


def _headline_counts(counts: dict[str, int], headline: str) -> dict[str, int]:
    """Provider-neutral aliases (headline:before, headline:io, ...) so one lab check fits KVM and TCG."""
    return {
        f"headline:{phase}": counts[f"{phase}:{headline}"]
        for phase in ("before", "idle", "io", "cpu", "after")
        if f"{phase}:{headline}" in counts
    }


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


BACKEND_NAMES = {"vm": "libvirt", "container": "docker"}


def run_compare(
    opts: CompareOptions, run_id: str, lab: str = "system-vm", progress: Progress = lambda _m: None
) -> dict[str, ExperimentEntry]:
    """Measure every kind and return the report's experiments (startup, memory, traps)."""
    opts.validate()
    startup: dict[str, Experiment] = {}
    memory: dict[str, Experiment] = {}
    traps: dict[str, Experiment] = {}
    if "startup" in opts.only:
        startup["native"] = _native_startup(max(opts.runs, 5))
    for kind in opts.kinds:
        samples, mem, trp = _measure_kind(kind, opts, run_id, lab, progress)
        backend = BACKEND_NAMES[kind]
        accel = samples[0].accel or None
        if "startup" in opts.only:
            startup[kind] = _startup_experiment(samples, backend)
        if "memory" in opts.only:
            memory[kind] = _memory_experiment(kind, mem, backend, accel)
        if "traps" in opts.only:
            notes = []
            if kind == "vm" and accel == "tcg":
                notes.append(
                    "the guest runs under TCG: there are no VM exits to count; these are the binary "
                    "translator's counters (translation blocks, chained jumps) before and after each phase"
                )
            if kind == "container":
                notes.append("a container has no VM exits: its workload traps straight into the host kernel")
            notes.extend(trp.get("notes", []))
            values: dict[str, float | int | str | bool | None] = {"headline_counter": trp["headline"]}
            if "skipped" in trp:  # not measurable as this user: say why and how, keep every other result
                values.update({"skipped": True, "skipped_reason": trp["skipped"], "fix": trp["fix"]})
                notes.append(f"skipped: {trp['skipped']} (fix: {trp['fix']})")
                progress(f"{kind}: traps skipped: {trp['skipped']} (fix: {trp['fix']})")
            traps[kind] = Experiment(
                unit="count",
                provider=trp["provider"],
                counts={**trp["counts"], **_headline_counts(trp["counts"], trp["headline"])},
                values=values,
                provenance=Provenance(
                    backend=backend, accel=accel, counter_source=trp["provider"], notes=notes
                ),
            )
    result: dict[str, ExperimentEntry] = {}
    for key, group in (("startup", startup), ("memory", memory), ("traps", traps)):
        if group:
            result[key] = group
    return result


ExperimentName = Literal["startup", "memory", "traps"]
KindName = Literal["container", "vm"]


def _every_experiment() -> list[ExperimentName]:
    return ["startup", "memory", "traps"]


def _every_kind() -> list[KindName]:
    return ["container", "vm"]


class CompareParams(StepParams):
    """The compare step's parameters (CompareOptions, as lab.toml and --set give them)."""

    runs: int = Field(5, ge=1, le=100)
    image: str = "tiny"
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    memory_mib: int | None = Field(None, ge=16)
    only: list[ExperimentName] = Field(default_factory=_every_experiment)
    kinds: list[KindName] = Field(default_factory=_every_kind)
    touch_mib: int = Field(32, ge=1)
    idle_s: float = Field(2.0, ge=0)
    ready_timeout_s: float = Field(120.0, gt=0)

    def options(self) -> CompareOptions:
        fields = self.model_dump()
        fields["only"], fields["kinds"] = tuple(self.only), tuple(self.kinds)
        return CompareOptions(**fields)


def lab_step(params: CompareParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step runner for labs/system-vm (and `vmlab compare`)."""
    result = run_compare(params.options(), ctx.run_id, ctx.lab, ctx.progress)
    for group in result.values():
        vm = group.get("vm") if isinstance(group, dict) else None
        if vm is not None and vm.provenance.accel:
            ctx.use_accel(vm.provenance.accel, vm.provenance.accel_reason or "")
            break
    return result
