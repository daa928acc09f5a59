"""From raw samples to the report's experiments: start-up stages, memory overhead, trap counts, the
native baseline, and a kind this host could not measure."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmlab.backends.capabilities import MIB, MemorySample
from vmlab.errors import NotAvailable
from vmlab.labs.native import time_process
from vmlab.report.model import Experiment, Measurement, Provenance
from vmlab.report.stats import summarize
from vmlab.systemvm.params import PHASES

Scalar = float | int | str | bool | None


@dataclass
class Sample:
    """What one cold start of one kind produced."""

    ladder: dict[str, float]
    guest_uptime_s: float | None
    accel: str
    accel_reason: str


def memory_values(sample: MemorySample) -> dict[str, Any]:
    """Overhead (the runtime's own resident memory) apart from what the workload or guest touched.

    A VM's RAM is one anonymous mapping of the configured size inside the VMM (found by size): its
    resident part is the guest's, the rest of the VMM's RSS is overhead. Elsewhere the runtime's
    processes are overhead and the runtime's charge to the workload (cgroup) is the workload's.
    """
    from vmlab.systemvm.memory_maps import account

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


def memory_experiment(kind: str, mem: dict[str, Any], backend: str, accel: str | None) -> Experiment:
    idle = [s for s in mem.get("idle", []) if "skipped" not in s]
    overheads = [float(s["overhead"]) for s in idle]
    values: dict[str, Scalar] = {}
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


def _headline_counts(counts: dict[str, int], headline: str) -> dict[str, int]:
    """Provider-neutral aliases (headline:before, headline:io, ...) so one lab check fits every provider."""
    return {
        f"headline:{phase}": counts[f"{phase}:{headline}"]
        for phase in PHASES
        if f"{phase}:{headline}" in counts
    }


def traps_experiment(
    trp: dict[str, Any], backend: str, accel: str | None, progress: Callable[[str], None]
) -> Experiment:
    notes = list(trp.get("notes", []))
    values: dict[str, Scalar] = {"headline_counter": trp["headline"]}
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


def startup_experiment(samples: list[Sample], backend: str) -> Experiment:
    """Every readiness stage across the cold starts; the last stage is `ready`."""
    stage_names = list(samples[0].ladder)
    stages: dict[str, Measurement] = {}
    for stage in stage_names:
        xs = [s.ladder[stage] for s in samples if stage in s.ladder]
        stages[stage] = Measurement(unit="s", samples=xs, summary=summarize(xs))
    ready_stage = stage_names[-1]
    ready = stages[ready_stage].samples
    first_stage = stage_names[1] if len(stage_names) > 1 else stage_names[0]
    overhead = stages[first_stage].samples
    values: dict[str, Scalar] = {
        "ready_stage": ready_stage,
        "harness_overhead_s": summarize(overhead).median,
        "harness_overhead_fraction": summarize(overhead).median / max(summarize(ready).median, 1e-9),
    }
    seen = [s.guest_uptime_s for s in samples if s.guest_uptime_s is not None]
    series: dict[str, list[float]] = {"harness_overhead_s": overhead}
    if seen:
        values["guest_uptime_at_marker_s"] = summarize(seen).median
        series["guest_uptime_at_marker_s"] = seen
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


def native_startup(runs: int) -> Experiment:
    """The same first command as a plain host process: the floor neither VM nor container can beat."""
    argv = ["/bin/busybox", "true"] if os.access("/bin/busybox", os.X_OK) else ["/bin/true"]
    samples, _ = time_process(argv, runs)
    return Experiment(
        unit="s",
        samples=samples,
        summary=summarize(samples),
        stages={"first_command": Measurement(unit="s", samples=samples, summary=summarize(samples))},
        provenance=Provenance(backend="native"),
        values={"ready_stage": "first_command"},
    )


def skipped_kind(kind: str, e: NotAvailable) -> Experiment:
    return Experiment(
        unit="s",
        values={"skipped": True, "skipped_reason": e.message, "fix": e.hint or ""},
        provenance=Provenance(notes=[f"{kind} not measured: {e.one_line()}"]),
    )
