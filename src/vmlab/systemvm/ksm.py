"""Page sharing (KSM) across N identical tiny guests: host memory with KSM off, then on.

N guests boot at once from one image (fleet.py). With KSM off: each QEMU's PSS, USS and RSS
(/proc/PID/smaps_rollup) and /proc/meminfo. Then KSM runs at a fast pace (ksmctl.ksm_session, which
restores the host's settings whatever happens) until ksmd has finished at least `scans` full scans
(bounded by `scan_timeout_s`), sampled as it goes; measured again: the kernel's counters
(pages_shared: distinct merged pages; pages_sharing: further mappings of them, i.e. pages saved;
ksm_zero_pages: zero pages mapped to the kernel's zero page, counted apart because use_zero_pages is
on) and each QEMU's own figures (PSS drop, KSM bytes in smaps_rollup, ksm_merging_pages).

QEMU marks guest RAM MADV_MERGEABLE unless told otherwise (`-machine mem-merge=off`, libvirt's
<memoryBacking><nosharepages/>): the report records whether each guest's RAM mapping carries the `mg`
flag in /proc/PID/smaps, so a guest that cannot be merged is visible instead of a silent zero.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import Field

from vmlab.backends.base import Instance
from vmlab.backends.capabilities import MIB
from vmlab.backends.context import Accel, RunContext
from vmlab.errors import BackendError, NotAvailable
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry, Provenance
from vmlab.report.stats import summarize
from vmlab.systemvm import memplots
from vmlab.systemvm.fleet import Fleet, Progress
from vmlab.systemvm.hostmem import PAGE_SIZE, ProcMem, guest_ram_mergeable, read_ksm, read_meminfo, read_proc
from vmlab.systemvm.ksmctl import KsmPace, check_writable, ksm_session, pause, snapshot, wait_full_scans
from vmlab.systemvm.params import run_spec


class KsmParams(StepParams):
    """The ksm step's parameters."""

    guests: int = Field(4, ge=1, le=16)
    image: str = "tiny"
    accel: Accel = "auto"
    memory_mib: int | None = Field(None, ge=64)
    pages_to_scan: int = Field(1000, ge=1, le=100_000)
    sleep_millisecs: int = Field(20, ge=0, le=10_000)
    scans: int = Field(2, ge=1, le=20)  # full scans to wait for: the first only checksums pages
    scan_timeout_s: float = Field(90.0, gt=0)
    settle_s: float = Field(2.0, ge=0)  # idle after every guest is ready, before the KSM-off figures
    ready_timeout_s: float = Field(180.0, gt=0)


def _procs(insts: list[Instance]) -> list[ProcMem]:
    out = []
    for inst in insts:
        pid = inst.pid()
        if pid is None:
            raise NotAvailable(
                f"{inst.name}: QEMU's process is not visible from this host (remote libvirt?)",
                hint="run the ksm task on the libvirt host",
            )
        try:
            out.append(read_proc(pid))
        except OSError as e:
            raise BackendError(f"{inst.name}: QEMU (pid {pid}) cannot be measured: {e}") from e
    return out


def _totals(prefix: str, procs: list[ProcMem], meminfo: dict[str, int]) -> dict[str, int]:
    return {
        f"{prefix}_rss_total": sum(p.rss for p in procs),
        f"{prefix}_pss_total": sum(p.pss for p in procs),
        f"{prefix}_uss_total": sum(p.uss for p in procs),
        f"{prefix}_ksm_bytes_total": sum(p.ksm for p in procs),
        f"{prefix}_anon_huge_total": sum(p.anon_huge for p in procs),
        f"{prefix}_host_available": meminfo.get("MemAvailable", meminfo["MemFree"]),
    }


def run_ksm(
    params: KsmParams, run_id: str, lab: str, uri: str | None, progress: Progress
) -> tuple[Experiment, dict[str, Any]]:
    """The experiment and the raw figures behind it (what the plot draws)."""
    ctx = RunContext.build(uri, (), params.accel)
    runtime = ctx.runtime_for("vm")
    specs = [
        run_spec(f"ksm{i}", run_id, lab, ctx, params, memory_mib=params.memory_mib)
        for i in range(params.guests)
    ]
    pace = KsmPace(params.pages_to_scan, params.sleep_millisecs)
    values: dict[str, float | int | str | bool | None] = {
        "guests": params.guests,
        "pages_to_scan": pace.pages_to_scan,
        "sleep_millisecs": pace.sleep_millisecs,
        "page_size": PAGE_SIZE,
    }
    series: dict[str, list[float]] = {k: [] for k in ("t_s", "pages_sharing", "pages_shared", "zero_pages")}
    check_writable()  # before any guest boots: without root there is nothing to measure
    before_host = snapshot()
    progress(f"ksm: boot {params.guests} guests from one image at once")
    with Fleet(runtime, ctx, specs, progress) as fleet:
        insts = fleet.launch(params.ready_timeout_s + 60)
        first = insts[0]
        accel, reason = first.accel, first.accel_reason
        guest_bytes = _guest_bytes(first)
        values["guest_memory_mib"] = guest_bytes // MIB if guest_bytes else None
        marks = [guest_ram_mergeable(p, guest_bytes) for p in (i.pid() for i in insts) if p is not None]
        values["guest_ram_mergeable"] = bool(marks) and all(m is True for m in marks)
        time.sleep(params.settle_s)
        off = _procs(insts)
        values.update(_totals("off", off, read_meminfo()))
        with ksm_session(pace, on_change=progress) as saved:
            values["host_settings"] = json.dumps(saved, sort_keys=True)
            t0 = time.monotonic()

            def sample(k: dict[str, int]) -> None:
                series["t_s"].append(round(time.monotonic() - t0, 3))
                series["pages_sharing"].append(k.get("pages_sharing", 0))
                series["pages_shared"].append(k.get("pages_shared", 0))
                series["zero_pages"].append(k.get("ksm_zero_pages", 0))

            scans, secs = wait_full_scans(
                params.scans, params.scan_timeout_s, poll_s=0.25, progress=progress, on_poll=sample
            )
            values["full_scans"] = scans
            values["scan_seconds"] = round(secs, 3)
            pause()  # merged pages stay; nothing merges while the figures below are read
            counters = read_ksm()
            on = _procs(insts)
            values.update(_totals("on", on, read_meminfo()))
        values["settings_restored"] = snapshot() == before_host
        values["settings_after"] = json.dumps(snapshot(), sort_keys=True)
    values["left_behind"] = fleet.left_behind()
    for key in ("pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "ksm_zero_pages"):
        values[key] = counters.get(key)
    sharing = int(counters.get("pages_sharing", 0))
    zero = int(counters.get("ksm_zero_pages", 0))
    values["saved_bytes"] = (sharing + zero) * PAGE_SIZE  # the kernel's measure, host-wide
    values["saved_nonzero_bytes"] = sharing * PAGE_SIZE
    values["nonzero_fraction"] = round(sharing / (sharing + zero), 4) if sharing + zero else None
    values["merging_pages_guests"] = sum(p.merging_pages or 0 for p in on)
    per_guest = [float(a.pss - b.pss) for a, b in zip(off, on, strict=True)]
    values["saved_pss_bytes"] = int(sum(per_guest))
    values["saved_per_guest_bytes"] = int(sum(per_guest) / len(per_guest))
    values["saved_fraction_of_pss"] = round(sum(per_guest) / max(1, int(values["off_pss_total"] or 0)), 4)
    notes = [
        "saved_bytes = (pages_sharing + ksm_zero_pages) x page size, host-wide (other processes' "
        "mergeable memory counts too); saved_pss_bytes = the guests' own PSS drop, which also holds "
        "what splitting transparent huge pages for merging freed (off/on_anon_huge_total)",
        f"KSM pace pages_to_scan={pace.pages_to_scan} sleep_millisecs={pace.sleep_millisecs}, "
        f"use_zero_pages=1; host settings before: {values['host_settings']}, restored",
    ]
    exp = Experiment(
        unit="bytes",
        samples=per_guest,
        summary=summarize(per_guest),
        provider="/sys/kernel/mm/ksm and /proc/PID/smaps_rollup",
        provenance=Provenance(backend=runtime, accel=accel or None, accel_reason=reason or None, notes=notes),
        values=values,
        series=series,
    )
    raw = {"off": [p.__dict__ for p in off], "on": [p.__dict__ for p in on], "counters": counters}
    return exp, raw


def _guest_bytes(inst: Instance) -> int:
    try:
        sample = inst.memory()
    except NotAvailable:
        return 0
    return int(sample.guest_ram_bytes or 0)


def ksm_step(params: KsmParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step runner (lab.toml [experiments.ksm]): the experiment, its raw figures and its plot."""
    uri = ctx.run.uri
    exp, raw = run_ksm(params, ctx.run_id, ctx.lab, uri, ctx.progress)
    if exp.provenance.accel:
        ctx.use_accel(exp.provenance.accel, exp.provenance.accel_reason or "")
    ctx.attach_text("ksm-raw.json", json.dumps(raw, indent=2, default=str) + "\n")
    memplots.attach_plot(ctx, "ksm.png", lambda p: memplots.plot_ksm(exp, p))
    return {"ksm": exp}
