"""Density and concurrent start: K guests, K sandboxes, K containers, each batch started at one instant.

For each kind and each K (as far as the host's memory allows), K instances of the kind's runtime are
started at once (fleet.py: a barrier releases every create together) and each one's ready latency is
taken from the common launch instant to its last readiness stamp (the runtime's own ladder: a guest's
first command over SSH, a container's first exec). Per batch: p50 and p99 of the K latencies, and host
memory per instance, two ways: the PSS of the instance's host processes (QEMU; shim, init and its
children; shim, Sentry and Gofer) and the drop of the host's MemAvailable, each divided by K. Every
batch is destroyed before the next starts, also on failure or Ctrl-C, and the runtime is asked
afterwards whether anything of the run is left (`left_behind`, which the lab checks is 0).

Reference points (the task sheet): Firecracker's concurrent-launch figures, and `docker run` taking
0.6 s alone vs 7.4 s with 32 others starting at once (moby#42096).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from vmlab.backends.capabilities import MIB
from vmlab.backends.context import Accel, RunContext
from vmlab.errors import NotAvailable, PartialFailure, UsageError, VmlabError
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry, Provenance
from vmlab.report.stats import summarize
from vmlab.systemvm import memplots
from vmlab.systemvm.fleet import Fleet, Progress, instance_pids, percentile
from vmlab.systemvm.hostmem import read_meminfo, read_proc
from vmlab.systemvm.params import run_spec

KindName = Literal["container", "sandbox", "vm"]
# what one instance is assumed to need when a batch is planned (MiB): a guest its RAM plus QEMU and
# TCG's code cache; a sandbox its Sentry and Gofer; a container its shim. Batches that would take more
# than BUDGET of MemAvailable are skipped with the reason.
NEED_MIB = {"vm": 160, "sandbox": 80, "container": 16}
BUDGET = 0.6


def _all_kinds() -> list[KindName]:
    return ["container", "sandbox", "vm"]


class DensityParams(StepParams):
    """The density step's parameters."""

    ks: list[int] = Field(default_factory=lambda: [1, 2, 4, 8])
    kinds: list[KindName] = Field(default_factory=_all_kinds)
    image: str = "tiny"
    accel: Accel = "auto"
    memory_mib: int | None = Field(None, ge=64)  # guests: None is the image's default
    settle_s: float = Field(1.0, ge=0)  # after the last instance is ready, before memory is read
    ready_timeout_s: float = Field(300.0, gt=0)  # per instance, from its own create

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 or k > 64 for k in v):
            raise ValueError("ks: one or more batch sizes from 1 to 64")
        return sorted(set(v))


def _fits(kind: str, k: int, memory_mib: int | None, available: int) -> str | None:
    need = k * (NEED_MIB[kind] + (max(0, (memory_mib or 256) - 256) if kind == "vm" else 0)) * MIB
    if need > BUDGET * available:
        return (
            f"K={k} {kind}s need about {need // MIB} MiB; {BUDGET:.0%} of MemAvailable is "
            f"{int(BUDGET * available) // MIB} MiB"
        )
    return None


@dataclass(frozen=True)
class _Batch:
    ready_s: list[float]
    pss_per_instance: int
    host_per_instance: int
    left_behind: int
    accel: str

    @property
    def p50_s(self) -> float:
        return round(percentile(self.ready_s, 50), 4)

    @property
    def p99_s(self) -> float:
        return round(percentile(self.ready_s, 99), 4)


def _batch(
    kind: str,
    runtime: str,
    k: int,
    params: DensityParams,
    ctx: RunContext,
    run_id: str,
    lab: str,
    progress: Progress,
) -> _Batch:
    specs = [
        run_spec(
            f"d{kind[0]}{k}x{i}",
            run_id,
            lab,
            ctx,
            params,
            memory_mib=params.memory_mib if kind == "vm" else None,
        )
        for i in range(k)
    ]
    before = read_meminfo().get("MemAvailable", 0)
    progress(f"density: {k} {kind}(s) ({runtime}) at once")
    with Fleet(runtime, ctx, specs, progress) as fleet:
        insts = fleet.launch(params.ready_timeout_s + 30)
        time.sleep(params.settle_s)
        after = read_meminfo().get("MemAvailable", 0)
        pss = 0
        for inst in insts:
            for pid in instance_pids(inst):
                with contextlib.suppress(OSError):  # a short-lived helper process ended meanwhile
                    pss += read_proc(pid).pss
        lat = fleet.ready_latencies()
        accel = insts[0].accel
    return _Batch(lat, pss // k, max(0, before - after) // k, fleet.left_behind(), accel)


def run_density(
    params: DensityParams, run_id: str, lab: str, uri: str | None, progress: Progress
) -> dict[str, Experiment]:
    ctx = RunContext.build(uri, (), params.accel)
    out: dict[str, Experiment] = {}
    for kind in params.kinds:
        runtime = ctx.runtime_for(kind)
        values: dict[str, float | int | str | bool | None] = {"ks": ",".join(str(k) for k in params.ks)}
        series: dict[str, list[float]] = {}
        notes: list[str] = []
        left = 0
        largest: list[float] = []
        accel = ""
        try:
            for k in params.ks:
                why = _fits(kind, k, params.memory_mib, read_meminfo().get("MemAvailable", 0))
                if why is not None:
                    values[f"k{k}_skipped"] = why
                    notes.append(f"K={k} skipped: {why}")
                    progress(f"density: {why}: skipped")
                    continue
                got = _batch(kind, runtime, k, params, ctx, run_id, lab, progress)
                series[f"k{k}_ready_s"] = [round(x, 4) for x in got.ready_s]
                values[f"k{k}_p50_s"], values[f"k{k}_p99_s"] = got.p50_s, got.p99_s
                values[f"k{k}_pss_per_instance"] = got.pss_per_instance
                values[f"k{k}_host_per_instance"] = got.host_per_instance
                left += got.left_behind
                largest, accel = got.ready_s, got.accel
                values["max_k"] = k
        except NotAvailable as e:
            if not largest:  # this host lacks the runtime: the kind is skipped, the others run
                progress(f"density: {kind} skipped: {e.one_line()}")
                out[kind] = Experiment(
                    unit="s",
                    values={"skipped": True, "skipped_reason": e.message, "fix": e.hint or ""},
                    provenance=Provenance(backend=runtime, notes=[f"{kind} not measured: {e.one_line()}"]),
                )
                continue
            raise PartialFailure(e.message, hint=e.hint, partial={"density": dict(out)}) from e
        except VmlabError as e:  # what the kinds before measured stays in the report
            if not out:
                raise
            raise PartialFailure(e.message, hint=e.hint, partial={"density": dict(out)}) from e
        if not largest:
            raise UsageError(
                f"density: no batch of {kind}s fits this host's memory ({'; '.join(notes)})",
                hint="--set density.ks=[1,2]",
            )
        mk = values["max_k"]
        values["p50_s"] = values[f"k{mk}_p50_s"]
        values["p99_s"] = values[f"k{mk}_p99_s"]
        values["pss_per_instance"] = values[f"k{mk}_pss_per_instance"]
        values["left_behind"] = left
        out[kind] = Experiment(
            unit="s",
            samples=largest,
            summary=summarize(largest),
            provider="each runtime's readiness ladder, from one launch instant; /proc smaps_rollup, meminfo",
            provenance=Provenance(
                backend=runtime,
                accel=accel or None,
                notes=[
                    "ready latency: from the instant every create was released together to the "
                    "instance's last readiness stage; samples are those of the largest K",
                    *notes,
                ],
            ),
            values=values,
            series=series,
        )
    return out


def density_step(params: DensityParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step runner (lab.toml [experiments.density]): one experiment per kind, and the plot."""
    uri = ctx.run.uri
    group = run_density(params, ctx.run_id, ctx.lab, uri, ctx.progress)
    vm = group.get("vm")
    if vm is not None and vm.provenance.accel:
        ctx.use_accel(vm.provenance.accel, vm.provenance.accel_reason or "")
    memplots.attach_plot(ctx, "density.png", lambda p: memplots.plot_density(group, p))
    return {"density": dict(group)}
