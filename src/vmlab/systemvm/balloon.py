"""Ballooning: a guest with a virtio balloon shrunk and grown through libvirt while it runs.

The guest first fills `touch_mib` of its tmpfs and deletes it again: the guest kernel now counts that
memory free, but the host still holds it (QEMU's RSS stays up, as nothing tells the host the pages are
free). Shrinking the balloon target makes the guest's driver take free pages and hand them to QEMU,
which gives them back to the host (madvise DONTNEED): the guest's MemTotal drops (the driver takes
the pages out of its managed memory) and QEMU's RSS with it. Growing the target again returns the
pages to the guest; the host pays for them only once the guest touches them.

Sampled every `interval_s` throughout: the guest's MemTotal and MemAvailable (over SSH, /proc/meminfo),
QEMU's RSS (/proc/PID/smaps_rollup) and libvirt's `actual` balloon size.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol, runtime_checkable

from pydantic import Field, model_validator

from vmlab.backends.base import Instance
from vmlab.backends.capabilities import MIB, CapabilityMissing
from vmlab.backends.context import Accel, RunContext
from vmlab.errors import BackendError, NotAvailable
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry, Provenance
from vmlab.systemvm import memplots
from vmlab.systemvm.fleet import Fleet, Progress
from vmlab.systemvm.hostmem import ParseError, parse_guest_meminfo, read_proc
from vmlab.systemvm.params import run_spec

PHASES = ("idle", "touched", "shrunk", "grown")
COLUMNS = ("t_s", "phase", "guest_total_mib", "guest_available_mib", "qemu_rss_mib", "actual_mib")


@runtime_checkable
class Ballooned(Protocol):
    """What a runtime with a balloon offers (libvirt's instances)."""

    def set_memory(self, mib: int) -> None: ...
    def balloon_stats(self) -> dict[str, int]: ...


class BalloonParams(StepParams):
    """The balloon step's parameters."""

    image: str = "tiny"
    accel: Accel = "auto"
    memory_mib: int = Field(256, ge=128, le=4096)  # the guest's maximum (its size at boot)
    shrink_to_mib: int = Field(128, ge=64)
    # filled and freed in the guest before the shrink; the initramfs's tmpfs holds about half the
    # guest's MemTotal (256 MiB: 96 MiB), so 64 fits beside the image's own files
    touch_mib: int = Field(64, ge=0)
    interval_s: float = Field(0.5, gt=0)
    phase_s: float = Field(3.0, ge=0)  # sampled this long in each phase after it settled
    settle_timeout_s: float = Field(60.0, gt=0)  # for the guest to reach a new balloon target
    ready_timeout_s: float = Field(180.0, gt=0)

    @model_validator(mode="after")
    def _sizes(self) -> BalloonParams:
        if self.shrink_to_mib >= self.memory_mib:
            raise ValueError(
                f"shrink_to_mib ({self.shrink_to_mib}) must be below memory_mib ({self.memory_mib})"
            )
        if self.touch_mib > self.memory_mib // 3:  # the initramfs's tmpfs holds half the guest's
            raise ValueError(f"touch_mib {self.touch_mib}: at most a third of memory_mib {self.memory_mib}")
        return self


class _Timeline:
    """The samples: one row per look, each column a series of the report."""

    def __init__(self, inst: Instance, ball: Ballooned, pid: int) -> None:
        self.inst, self.ball, self.pid = inst, ball, pid
        self.t0 = time.monotonic()
        self.cols: dict[str, list[float]] = {
            k: []
            for k in ("t_s", "phase", "guest_total_mib", "guest_available_mib", "qemu_rss_mib", "actual_mib")
        }
        self.events: dict[str, float] = {}

    def sample(self, phase: str) -> dict[str, float]:
        res = self.inst.exec("cat /proc/meminfo", timeout=30)
        if not res.ok:
            raise BackendError(f"{self.inst.name}: cat /proc/meminfo exited {res.rc}")
        try:
            guest = parse_guest_meminfo(res.stdout)
        except ParseError as e:
            raise BackendError(f"{self.inst.name}: the guest's /proc/meminfo: {e}") from e
        try:
            rss = read_proc(self.pid).rss
        except OSError as e:
            raise BackendError(f"{self.inst.name}: QEMU (pid {self.pid}) cannot be measured: {e}") from e
        actual = self.ball.balloon_stats().get("actual", 0) * 1024
        row = {
            "t_s": round(time.monotonic() - self.t0, 3),
            "phase": float(PHASES.index(phase)),
            "guest_total_mib": guest["MemTotal"] / MIB,
            "guest_available_mib": guest.get("MemAvailable", guest["MemFree"]) / MIB,
            "qemu_rss_mib": rss / MIB,
            "actual_mib": actual / MIB,
        }
        for k, v in row.items():
            self.cols[k].append(round(v, 2))
        return row

    def hold(self, phase: str, seconds: float, interval: float) -> dict[str, float]:
        """Sample `phase` for `seconds`; the last row."""
        self.events[phase] = round(time.monotonic() - self.t0, 3)
        end = time.monotonic() + seconds
        row = self.sample(phase)
        while time.monotonic() < end:
            time.sleep(interval)
            row = self.sample(phase)
        return row

    def until(self, phase: str, done: Any, timeout: float, interval: float) -> tuple[dict[str, float], float]:
        """Sample until `done(row)` (bounded); the row and the seconds it took."""
        self.events[phase] = t_start = round(time.monotonic() - self.t0, 3)
        deadline = time.monotonic() + timeout
        row = self.sample(phase)
        while not done(row) and time.monotonic() < deadline:
            time.sleep(interval)
            row = self.sample(phase)
        return row, round(row["t_s"] - t_start, 3)


def run_balloon(
    params: BalloonParams, run_id: str, lab: str, uri: str | None, progress: Progress
) -> Experiment:
    ctx = RunContext.build(uri, (), params.accel)
    runtime = ctx.runtime_for("vm")
    spec = run_spec(
        "balloon", run_id, lab, ctx, params, memory_mib=params.memory_mib, options={"balloon": True}
    )
    values: dict[str, float | int | str | bool | None] = {
        "memory_mib": params.memory_mib,
        "shrink_to_mib": params.shrink_to_mib,
        "touch_mib": params.touch_mib,
    }
    progress(f"balloon: boot a {params.memory_mib} MiB guest with a virtio balloon")
    with Fleet(runtime, ctx, [spec], progress) as fleet:
        (inst,) = fleet.launch(params.ready_timeout_s + 30)
        if not isinstance(inst, Ballooned):
            raise CapabilityMissing(f"runtime {runtime} offers no balloon", hint="the libvirt runtime")
        pid = inst.pid()
        if pid is None:
            raise NotAvailable(
                "QEMU's process is not visible from this host", hint="run it on the libvirt host"
            )
        driver = inst.exec("test -d /sys/bus/virtio/drivers/virtio_balloon && echo yes", timeout=30)
        if "yes" not in driver.stdout:
            raise NotAvailable(
                f"image {params.image}'s kernel has no virtio_balloon driver loaded",
                hint="the tiny image loads it (vm-images/tiny/recipe.toml); vmlab image build tiny",
            )
        tl = _Timeline(inst, inst, pid)
        idle = tl.hold("idle", params.phase_s, params.interval_s)
        if params.touch_mib:
            progress(f"balloon: the guest fills and frees {params.touch_mib} MiB of tmpfs")
            fill = (
                f"d=/dev/shm; [ -w $d ] && grep -q ' /dev/shm ' /proc/mounts || d=/tmp; "
                f"dd if=/dev/zero of=$d/vmlab-balloon bs=1048576 count={params.touch_mib} 2>/dev/null;"
                f" rc=$?; rm -f $d/vmlab-balloon; [ $rc = 0 ] && echo ok"
            )
            res = inst.exec(fill, timeout=120)
            if "ok" not in res.stdout:
                raise BackendError(
                    f"balloon: filling {params.touch_mib} MiB in the guest failed (exit {res.rc})",
                    hint="a smaller balloon.touch_mib: the guest's tmpfs holds about half its memory",
                )
        touched = tl.hold("touched", params.phase_s, params.interval_s)
        progress(f"balloon: shrink to {params.shrink_to_mib} MiB (setMemoryFlags, live)")
        inst.set_memory(params.shrink_to_mib)
        goal_total = idle["guest_total_mib"] - (params.memory_mib - params.shrink_to_mib) + 1
        shrunk, shrink_s = tl.until(
            "shrunk", lambda r: r["guest_total_mib"] <= goal_total, params.settle_timeout_s, params.interval_s
        )
        shrunk = tl.hold("shrunk", params.phase_s, params.interval_s) if params.phase_s else shrunk
        progress(f"balloon: grow back to {params.memory_mib} MiB")
        inst.set_memory(params.memory_mib)
        grown, grow_s = tl.until(
            "grown",
            lambda r: r["guest_total_mib"] >= idle["guest_total_mib"] - 1,
            params.settle_timeout_s,
            params.interval_s,
        )
        grown = tl.hold("grown", params.phase_s, params.interval_s) if params.phase_s else grown
        accel, reason = inst.accel, inst.accel_reason
    values["left_behind"] = fleet.left_behind()
    for name, row in (("idle", idle), ("touched", touched), ("shrunk", shrunk), ("grown", grown)):
        for key in ("guest_total_mib", "guest_available_mib", "qemu_rss_mib", "actual_mib"):
            values[f"{name}_{key}"] = round(row[key], 2)
    values["shrink_seconds"] = shrink_s
    values["grow_seconds"] = grow_s
    values["guest_total_drop_mib"] = round(idle["guest_total_mib"] - shrunk["guest_total_mib"], 2)
    values["host_rss_returned_mib"] = round(touched["qemu_rss_mib"] - shrunk["qemu_rss_mib"], 2)
    values["events"] = json.dumps(tl.events)
    return Experiment(
        unit="MiB",
        samples=[float(x) for x in tl.cols["guest_total_mib"]],
        provider="the guest's /proc/meminfo over SSH; QEMU's smaps_rollup; libvirt memoryStats",
        provenance=Provenance(
            backend=runtime,
            accel=accel or None,
            accel_reason=reason or None,
            notes=[
                "virtio balloon, statistics period 1 s; the target set with virDomainSetMemoryFlags(LIVE)",
                f"phases start at (s): {tl.events}",
            ],
        ),
        values=values,
        series={k: v for k, v in tl.cols.items()},
    )


def balloon_step(params: BalloonParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step runner (lab.toml [experiments.balloon]): the experiment and its plot."""
    uri = ctx.run.uri
    exp = run_balloon(params, ctx.run_id, ctx.lab, uri, ctx.progress)
    if exp.provenance.accel:
        ctx.use_accel(exp.provenance.accel, exp.provenance.accel_reason or "")
    memplots.attach_plot(ctx, "balloon.png", lambda p: memplots.plot_balloon(exp, p))
    return {"balloon": exp}
