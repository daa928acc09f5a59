"""N cold starts of one kind on its runtime, and the memory and trap samples of the last instance.

Nothing here knows which runtime runs a kind: an experiment asks an instance for a capability and
records `skipped` with the reason and the fix when the runtime lacks it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vmlab.backends.base import Instance, InstanceSpec
from vmlab.backends.capabilities import CapabilityMissing, TrapCounter
from vmlab.backends.context import RunContext
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import VmlabError
from vmlab.systemvm.assemble import Sample, memory_values
from vmlab.systemvm.params import CompareParams, Workloads, run_spec

log = logging.getLogger("vmlab")

Progress = Callable[[str], None]


@dataclass
class KindResult:
    runtime: str
    samples: list[Sample] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    traps: dict[str, Any] = field(default_factory=dict)


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


def measure_kind(
    kind: str, params: CompareParams, ctx: RunContext, run_id: str, lab: str, progress: Progress
) -> KindResult:
    """N cold starts of one kind; memory and traps measured on the last, still-running instance."""
    from vmlab.backends import open_runtime

    runtime = ctx.runtime_for(kind)
    result = KindResult(runtime)
    backend = open_runtime(runtime, ctx)
    try:
        for i in range(params.runs):
            spec = run_spec(f"{kind[0]}{i}", run_id, lab, ctx, params, memory_mib=params.memory_mib)
            progress(f"{kind} ({runtime}): cold start {i + 1}/{params.runs}")
            with _started(backend, spec) as inst:
                result.samples.append(
                    Sample(inst.ladder_relative(), inst.guest_uptime(), inst.accel, inst.accel_reason)
                )
                last = i == params.runs - 1
                if "memory" in params.only:
                    result.memory.setdefault("idle", []).append(memory_sample(inst))
                    if last and "skipped" not in result.memory["idle"][-1]:
                        progress(f"{kind}: memory after touching {params.touch_mib} MiB")
                        inst.exec(Workloads.touch(params.touch_mib), timeout=120).check()
                        result.memory["after"] = memory_sample(inst)
                if "traps" in params.only and last:
                    progress(f"{kind}: traps while idle {params.idle_s:g}s, I/O loop, CPU loop")
                    result.traps = traps_of(inst, params.workloads, params.idle_s)
    except BaseException:
        # Ctrl-C deferred through a create re-raises once the instance exists, before _started holds
        # it: the backend removes what it created (destroying twice is harmless)
        with deferred_interrupts():
            try:
                backend.cleanup_created()
            except VmlabError as e:
                log.warning("cleanup: %s", e.one_line())
        raise
    finally:
        with contextlib.suppress(VmlabError):
            backend.close()
    return result


def memory_sample(inst: Instance) -> dict[str, Any]:
    try:
        return memory_values(inst.memory())
    except CapabilityMissing as e:
        return {"skipped": e.message, "fix": e.hint or ""}


def traps_of(inst: Instance, workloads: Workloads, idle_s: float) -> dict[str, Any]:
    """The traps of one instance, from whatever counter its runtime provides; a counter this user may
    not read is recorded as skipped, with the reason and the fix, and the run goes on."""
    try:
        counter = inst.trap_counter()
    except CapabilityMissing as e:
        return {"provider": None, "counts": {}, "headline": "", "skipped": e.message, "fix": e.hint or ""}
    try:
        return count_phases(counter, inst.io_sink, workloads, idle_s)
    finally:
        counter.close()


def count_phases(counter: TrapCounter, sink: str, workloads: Workloads, idle_s: float) -> dict[str, Any]:
    phases: dict[str, str | None] = {"idle": None, "io": workloads.io(sink), "cpu": workloads.cpu()}
    head = counter.headline
    counts: dict[str, int] = {}
    first = counter.snapshot()
    counts.update({f"before:{k}": v for k, v in (first or {head: 0}).items()})
    total = counts.get(f"before:{head}", 0)
    for phase, cmd in phases.items():
        got = counter.phase(phase, cmd, idle_s)
        counts.update({f"{phase}:{k}": v for k, v in got.items()})
        total += got.get(head, 0)
    last = counter.snapshot() if first is not None else None
    counts.update({f"after:{k}": v for k, v in (last or {head: total}).items()})
    return {"provider": counter.provider, "counts": counts, "headline": head, "notes": list(counter.notes)}
