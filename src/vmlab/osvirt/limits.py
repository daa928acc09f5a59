"""Step `limits` of labs/os-virt (t5): past the memory limit, a fork loop against pids.max, a CPU quota,
and the cgroup's memory charge against the shell's RSS."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

from pydantic import Field

from vmlab.labs.step import StepContext, StepParams
from vmlab.osvirt.box import BoxLimits, run_box
from vmlab.osvirt.lab import box_of, new_name, rootfs_of
from vmlab.osvirt.probes import CPU_SCRIPT, FORK_SCRIPT, RSS_SCRIPT, alloc_script
from vmlab.report.model import Experiment, ExperimentEntry, Provenance


class LimitsParams(StepParams):
    memory_mib: int = Field(64, ge=16, le=1024)
    pids_max: int = Field(24, ge=8, le=256)
    cpu_pct: int = Field(20, ge=5, le=100)
    busy_s: float = Field(2.0, gt=0, le=10)
    timeout_s: float = Field(30.0, gt=0, le=300)


def _cgroup_memory(lines: list[str]) -> tuple[str, int | None]:
    """The box's memory cgroup (from its /proc/self/cgroup) and its usage in bytes right now."""
    from vmlab.osvirt.box import CGROUP_ROOT

    for line in lines:
        _, controllers, path = line.split(":", 2)
        if path == "/":
            continue
        if "memory" in controllers.split(","):
            f = CGROUP_ROOT / "memory" / path.lstrip("/") / "memory.usage_in_bytes"
        elif controllers == "" and (CGROUP_ROOT / "cgroup.controllers").exists():
            f = CGROUP_ROOT / path.lstrip("/") / "memory.current"
        else:
            continue
        try:
            return path, int(f.read_text())
        except (OSError, ValueError):
            return path, None
    return "none", None


def _rss_probe(box: Path, rootfs: Path, limits: BoxLimits, nbytes: int) -> Experiment:
    """Hold nbytes in the box's shell while the host reads the box's memory cgroup."""
    from vmlab.osvirt.box import _stop, box_argv, sweep

    name = new_name()
    k = max(1, int(math.log2(nbytes)))
    held = BoxLimits(memory_mib=limits.memory_mib, pids_max=limits.pids_max, timeout_s=limits.timeout_s)
    argv = box_argv(box, rootfs, held, name, ["/bin/sh", "-c", RSS_SCRIPT.replace("__K__", str(k))])
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    probes: dict[str, str] = {}
    cg_lines: list[str] = []
    usage: int | None = None
    path = "none"
    try:
        assert proc.stdout is not None and proc.stdin is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("cg="):
                cg_lines.append(line[3:])
            elif line == "ready":
                path, usage = _cgroup_memory(cg_lines)
                proc.stdin.write("go\n")
                proc.stdin.flush()
                break
            elif "=" in line:
                key, _, value = line.partition("=")
                probes[key] = value
        proc.communicate(timeout=limits.timeout_s + 10)
    except BaseException:
        _stop(proc)
        raise
    finally:
        if proc.poll() is None:
            _stop(proc)
        swept = sweep(name)
    counts: dict[str, int] = {"string_bytes": 1 << k, "left_cgroups": len(swept)}
    if probes.get("rss_kib", "").isdigit():
        counts["rss_bytes"] = int(probes["rss_kib"]) * 1024
    if usage is not None:
        counts["cgroup_bytes"] = usage
    return Experiment(
        unit="bytes",
        provider="vmlab.osvirt",
        counts=counts,
        values={"cgroup": path},
        provenance=Provenance(
            backend="box",
            counter_source="VmRSS of the box's shell; memory.usage_in_bytes (v1) or memory.current (v2)",
        ),
    )


def limits(params: LimitsParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `limits`: past the memory limit (OOM kill), a fork loop against pids.max, cgroup vs RSS."""
    box = box_of(ctx)
    rootfs = rootfs_of(ctx)
    lim = BoxLimits("limits", params.memory_mib, params.pids_max, None, [], params.timeout_s)
    group: dict[str, Experiment] = {}

    ctx.progress(f"os-virt: allocating {2 * params.memory_mib} MiB past a {params.memory_mib} MiB limit")
    run = run_box(box, rootfs, lim, ["/bin/sh", "-c", alloc_script(2 * params.memory_mib << 20)], new_name())
    p = run.probes()
    status = int(p["alloc_status"]) if p.get("alloc_status", "").isdigit() else -1
    group["memory"] = Experiment(
        unit="count",
        provider="vmlab.osvirt",
        counts={
            "alloc_status": status,
            "exit_code": run.code,
            "limit_mib": params.memory_mib,
            "left_cgroups": len(run.swept),
        },
        values={"oom_killed": status == 128 + 9, "alloc_done": p.get("alloc") == "done"},
        text=run.stdout + run.stderr,
    )

    attempts = params.pids_max + 8
    ctx.progress(f"os-virt: {attempts} forks against pids.max = {params.pids_max}")
    run = run_box(
        box, rootfs, lim, ["/bin/sh", "-c", FORK_SCRIPT.replace("__N__", str(attempts))], new_name()
    )
    p = run.probes()
    started = int(p["started"]) if p.get("started", "").isdigit() else 0
    group["forks"] = Experiment(
        unit="count",
        provider="vmlab.osvirt",
        counts={
            "started": started,
            "attempts": attempts,
            "pids_max": params.pids_max,
            "exit_code": run.code,
            "left_cgroups": len(run.swept),
        },
        values={"fork_failed": started < attempts},
        text=run.stdout[-2000:] + run.stderr[-2000:],
    )

    ctx.progress(f"os-virt: {params.busy_s} s of busy loop under a {params.cpu_pct} % CPU quota")
    cpu_lim = BoxLimits("limits", params.memory_mib, params.pids_max, params.cpu_pct, [], params.timeout_s)
    script = CPU_SCRIPT.replace("__CS__", str(round(params.busy_s * 100)))
    run = run_box(box, rootfs, cpu_lim, ["/bin/sh", "-c", script], new_name())
    p = run.probes()
    wall_cs, ticks = int(p.get("wall_cs", "0") or 0), int(p.get("cpu_ticks", "0") or 0)
    group["cpu"] = Experiment(
        unit="count",
        provider="vmlab.osvirt",
        counts={
            "wall_cs": wall_cs,
            "cpu_ticks": ticks,
            "cpu_pct": params.cpu_pct,
            "exit_code": run.code,
            "left_cgroups": len(run.swept),
        },
        values={"cpu_share": round(ticks / wall_cs, 4) if wall_cs else None},
        provenance=Provenance(backend="box", counter_source="/proc/self/stat utime+stime over /proc/uptime"),
        text=run.stdout + run.stderr,
    )

    ctx.progress("os-virt: cgroup memory against the process's RSS")
    group["accounting"] = _rss_probe(box, rootfs, lim, (params.memory_mib << 20) // 4)
    return {ctx.step_id: group}
