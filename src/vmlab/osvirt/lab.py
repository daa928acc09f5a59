"""Step runners for labs/os-virt: probes inside the student's box (and Docker, gVisor), limits, cost.

Every probe is a line of POSIX sh run as the box's command, so the same script runs in the box (busybox
of the tiny image), in the skeleton (the host's /bin/sh) and in `docker run`; it uses builtins where a
fork could fail (the pids limit) and writes nothing outside /tmp.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pydantic import Field

from vmlab.errors import UsageError
from vmlab.labs.step import StepContext, StepParams
from vmlab.osvirt.box import BoxLimits, BoxRun, run_box, run_docker, unpack_rootfs
from vmlab.report.model import Experiment, ExperimentEntry, Measurement, Provenance
from vmlab.report.stats import summarize

# ---- the probes -----------------------------------------------------------------------------------

PROBE_SCRIPT = r"""
echo "pid=$$"
n=0; for d in /proc/[0-9]*; do [ -d "$d" ] && n=$((n+1)); done; echo "pids=$n"
read h < /proc/sys/kernel/hostname; echo "hostname=$h"
n=0; while read l; do n=$((n+1)); done < /proc/mounts; echo "mounts=$n"
if [ -e "__MARKER__" ]; then echo host_file=reachable; else echo host_file=unreachable; fi
if [ -e /linuxrc ] && [ -x /bin/busybox ]; then echo rootfs=tiny; else echo rootfs=other; fi
ifs=; while read l; do case "$l" in *:*) ifs="$ifs${l%%:*},";; esac; done < /proc/net/dev; echo "netifs=$ifs"
while read k v rest; do case "$k" in
  CapEff:) echo "cap_eff=$v";; Seccomp:) echo "seccomp=$v";; NoNewPrivs:) echo "no_new_privs=$v";;
  Uid:) echo "uid=$v";; esac; done < /proc/self/status
read a b c < /proc/self/uid_map; echo "uid_map=$a $b $c"
if out=$(renice -n -5 -p $$ 2>&1); then echo priv=allowed; else echo priv=denied; fi
d=/tmp/.vmlab-probe-$$
if err=$(mkdir "$d" 2>&1); then echo mkdir=allowed; rmdir "$d"; else echo "mkdir=${err##*: }"; fi
"""

# the probes compared between the box, Docker and gVisor (hostname differs by design)
COMPARED = ("pid", "pids", "mounts", "host_file", "netifs", "cap_eff", "seccomp", "userns", "priv", "mkdir")
FULL_UID_MAP = "4294967295"


def probe_script(marker: Path) -> str:
    return PROBE_SCRIPT.replace("__MARKER__", str(marker))


def probe_experiment(run: BoxRun, backend: str) -> Experiment:
    """The probes' answers: counts for numbers, values for the rest, the raw output as text."""
    p = run.probes()
    counts: dict[str, int] = {"exit_code": run.code, "left_cgroups": len(run.swept)}
    for key in ("pid", "pids", "mounts", "uid"):
        if p.get(key, "").lstrip("-").isdigit():
            counts[key] = int(p[key])
    host = re.fullmatch(r"box-(\d+)", p.get("hostname", ""))
    if host:
        counts["hostname_n"] = int(host.group(1))
    with contextlib.suppress(KeyError, ValueError):
        counts["cap_count"] = bin(int(p["cap_eff"], 16)).count("1")
    values: dict[str, str | bool | int | float | None] = {
        k: p.get(k)
        for k in ("hostname", "host_file", "rootfs", "netifs", "cap_eff", "seccomp", "priv", "mkdir")
    }
    uid_map = p.get("uid_map", "").split()
    values["uid_map"] = " ".join(uid_map) or None
    values["userns"] = bool(uid_map) and uid_map[-1] != FULL_UID_MAP
    values["timed_out"] = run.timed_out
    return Experiment(
        unit="count",
        provenance=Provenance(
            backend=backend, notes=["probes: a POSIX sh script run as the container's command"]
        ),
        provider="vmlab.osvirt",
        counts=counts,
        values=values,
        text=run.stdout + ("\n--- stderr ---\n" + run.stderr if run.stderr else ""),
    )


def _row(exp: Experiment, key: str) -> object:
    return exp.counts.get(key, exp.values.get(key))


def compare(group: dict[str, Experiment]) -> Experiment:
    """Which compared probes of the box differ from Docker's and gVisor's."""
    box = group["box"]
    counts: dict[str, int] = {}
    values: dict[str, str | bool | int | float | None] = {}
    for other in ("docker", "runsc"):
        if other in group:
            diff = [k for k in COMPARED if _row(box, k) != _row(group[other], k)]
            counts[f"differ_{other}"] = len(diff)
            values[f"differ_{other}"] = ",".join(diff)
    return Experiment(unit="count", provider="vmlab.osvirt", counts=counts, values=values)


# ---- shared set-up ---------------------------------------------------------------------------------


def _rootfs(ctx: StepContext) -> Path:
    from vmlab.images.cache import get_image

    return unpack_rootfs(get_image("tiny", verify="quick").rootfs_tar, ctx.scratch / "os-virt" / "rootfs")


def _box(ctx: StepContext) -> Path:
    box = ctx.inputs.get("box")
    if box is None:
        raise UsageError("no box to run", hint="vmlab lab run os-virt --input box=box.py")
    return box


_counter = [0]


def _name() -> str:
    _counter[0] += 1
    return f"vmlab-osvirt-{os.getpid()}-{_counter[0]}"


def _docker_image() -> str | None:
    """The tiny image's Docker tag (imported now if needed), None without a daemon."""
    if shutil.which("docker") is None:
        return None
    from vmlab.errors import VmlabError
    from vmlab.images.cache import get_image
    from vmlab.images.docker_image import ensure_docker_image

    info = get_image("tiny", verify="quick")
    try:
        ensure_docker_image(info)
    except VmlabError:
        return None
    return info.docker_tag


def _runsc_ok() -> bool:
    try:
        out = subprocess.run(
            ["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "runsc" in out.stdout


# ---- step: isolation -------------------------------------------------------------------------------


class IsolationParams(StepParams):
    host_n: int = Field(100, ge=0, le=999999)  # the box's hostname is box-<host_n>
    memory_mib: int = Field(64, ge=16, le=4096)
    pids_max: int = Field(32, ge=8, le=4096)
    cpu_pct: int = Field(50, ge=1, le=400)
    deny: list[str] = Field(default_factory=lambda: ["mkdir", "mkdirat"])
    timeout_s: float = Field(20.0, gt=0, le=300)
    compare: list[str] = Field(default_factory=lambda: ["docker", "runsc"])


def isolation(params: IsolationParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `isolation`: the probes in the student's box, then in Docker and gVisor for comparison."""
    box = _box(ctx)
    rootfs = _rootfs(ctx)
    marker = (ctx.scratch / "os-virt" / "host-marker").resolve()
    marker.write_text("a file on the host, outside the box's root\n")
    script = probe_script(marker)
    limits = BoxLimits(
        f"box-{params.host_n}",
        params.memory_mib,
        params.pids_max,
        params.cpu_pct,
        params.deny,
        params.timeout_s,
    )
    ctx.progress("os-virt: probes in your box")
    group: dict[str, Experiment] = {
        "box": probe_experiment(run_box(box, rootfs, limits, ["/bin/sh", "-c", script], _name()), "box")
    }
    image = _docker_image() if params.compare else None
    notes: list[str] = []
    for kind in params.compare:
        if image is None:
            notes.append(f"{kind}: no Docker daemon or tiny image here (make setup; vmlab image build tiny)")
            continue
        if kind == "runsc" and not _runsc_ok():
            notes.append("runsc: Docker has no runsc runtime (install gVisor, runsc install)")
            continue
        ctx.progress(f"os-virt: probes in docker run{' --runtime runsc' if kind == 'runsc' else ''}")
        run = run_docker(
            image, ["/bin/sh", "-c", script], _name(), runtime="runsc" if kind == "runsc" else None
        )
        group[kind] = probe_experiment(run, kind)
    summary = compare(group)
    summary.provenance.notes.extend(notes)
    group["compare"] = summary
    return {ctx.step_id: group}


# ---- step: limits ----------------------------------------------------------------------------------


class LimitsParams(StepParams):
    memory_mib: int = Field(64, ge=16, le=1024)
    pids_max: int = Field(24, ge=8, le=256)
    cpu_pct: int = Field(20, ge=5, le=100)
    busy_s: float = Field(2.0, gt=0, le=10)
    timeout_s: float = Field(30.0, gt=0, le=300)


def _alloc_script(nbytes: int) -> str:
    """Doubling a shell string (builtins only) to at least nbytes; prints the exit status of the subshell."""
    k = max(1, math.ceil(math.log2(nbytes)))
    grow = f'x=a; i=0; while [ $i -lt {k} ]; do x="$x$x"; i=$((i+1)); done'
    return f'( {grow}; echo alloc=done ); echo "alloc_status=$?"'


RSS_SCRIPT = r"""
x=a; i=0; while [ $i -lt __K__ ]; do x="$x$x"; i=$((i+1)); done
while read k v u; do [ "$k" = VmRSS: ] && echo "rss_kib=$v"; done < /proc/self/status
while read l; do echo "cg=$l"; done < /proc/self/cgroup
echo ready
read line
echo done
"""

# a chain of nested subshells, each waiting for the next: depth k alive means k forks succeeded (no
# background jobs: ash opens /dev/null for those, which a bare root file system may lack)
FORK_SCRIPT = r"""
f() { echo "started=$1"; if [ $1 -lt __N__ ]; then ( f $(($1+1)) ); fi; }; f 0
"""


# a busy loop of busy_s wall seconds (centiseconds from /proc/uptime), then the shell's own CPU time
# (utime + stime, fields 14 and 15 of /proc/self/stat, in USER_HZ = 100 ticks per second)
CPU_SCRIPT = r"""
read up rest < /proc/uptime; t0=${up%.*}${up#*.}; now=$t0; i=0
while [ $((now - t0)) -lt __CS__ ]; do i=$((i+1)); read up rest < /proc/uptime; now=${up%.*}${up#*.}; done
read -r pid comm state ppid pgrp sess tty tpgid flags mi cmi ma cma utime stime rest < /proc/self/stat
echo "wall_cs=$((now - t0))"; echo "cpu_ticks=$((utime + stime))"; echo "loops=$i"
"""


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

    name = _name()
    k = max(1, int(math.log2(nbytes)))
    held = BoxLimits(memory_mib=limits.memory_mib, pids_max=limits.pids_max, timeout_s=limits.timeout_s)
    argv = box_argv(box, rootfs, held, name, ["/bin/sh", "-c", RSS_SCRIPT.replace("__K__", str(k))])
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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
    box = _box(ctx)
    rootfs = _rootfs(ctx)
    lim = BoxLimits("limits", params.memory_mib, params.pids_max, None, [], params.timeout_s)
    group: dict[str, Experiment] = {}

    ctx.progress(f"os-virt: allocating {2 * params.memory_mib} MiB past a {params.memory_mib} MiB limit")
    run = run_box(box, rootfs, lim, ["/bin/sh", "-c", _alloc_script(2 * params.memory_mib << 20)], _name())
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
    run = run_box(box, rootfs, lim, ["/bin/sh", "-c", FORK_SCRIPT.replace("__N__", str(attempts))], _name())
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
    run = run_box(box, rootfs, cpu_lim, ["/bin/sh", "-c", script], _name())
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


# ---- step: cost ------------------------------------------------------------------------------------


class CostParams(StepParams):
    repeats: int = Field(7, ge=1, le=100)
    ns_repeats: int = Field(30, ge=1, le=1000)
    compare: list[str] = Field(default_factory=lambda: ["runc", "docker", "runsc"])
    timeout_s: float = Field(20.0, gt=0, le=300)


BOX_STAGES = (
    ("cgroup_setup", "cgroups"),
    ("cgroup_join", "fork+join"),
    ("unshare", "unshare"),
    ("userns_map", "uid_map"),
    ("fork", "fork pid1"),
    ("uts", "hostname"),
    ("mounts", "mounts"),
    ("pivot_root", "pivot_root"),
    ("proc", "proc"),
    ("net", "loopback"),
    ("caps", "caps"),
    ("seccomp", "seccomp"),
    ("exit", "exec+exit"),
)


def _measure(unit: str, samples: list[float]) -> Measurement:
    return Measurement(unit=unit, samples=samples, summary=summarize(samples))


def _exp(
    unit: str, samples: list[float], backend: str, notes: list[str] | None = None, **kw: object
) -> Experiment:
    return Experiment(
        unit=unit,
        samples=samples,
        summary=summarize(samples),
        provider="vmlab.osvirt",
        provenance=Provenance(backend=backend, notes=notes or []),
        **kw,  # type: ignore[arg-type]
    )


def _ns_costs(repeats: int) -> dict[str, Experiment]:
    from vmlab.osvirt import nscost

    out = subprocess.run(
        [sys.executable, nscost.__file__, str(repeats)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows: dict[str, list[int]] = json.loads(out.stdout)
    fork = rows.pop("fork")
    base = statistics.median(fork)
    group = {"fork": _exp("us", [x / 1000 for x in fork], "fork", ["fork + _exit + waitpid, the baseline"])}
    for kind, samples in rows.items():
        net = [(x - base) / 1000 for x in samples]
        group[kind] = _exp(
            "us", net, kind, [f"fork + unshare({kind}) + _exit + waitpid, minus the fork median"]
        )
    return group


def _runc_bundle(ctx: StepContext, rootfs_tar: Path) -> Path:
    bundle = ctx.scratch / "os-virt" / "runc-bundle"
    unpack_rootfs(rootfs_tar, bundle / "rootfs")
    if not (bundle / "config.json").exists():
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True, capture_output=True, timeout=30)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    spec["hostname"] = "runc"
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))
    return bundle


def cost(params: CostParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `cost`: per-namespace creation cost, then /bin/true in the box, runc, Docker and gVisor."""
    from vmlab.images.cache import get_image

    box = _box(ctx)
    rootfs = _rootfs(ctx)
    ctx.progress(f"os-virt: namespace creation, {params.ns_repeats} repeats per kind")
    ns = _ns_costs(params.ns_repeats)
    create: dict[str, Experiment] = {}

    py = []
    for _ in range(params.repeats):
        t0 = time.perf_counter_ns()
        subprocess.run(
            [sys.executable, "-c", "import argparse, ctypes"], capture_output=True, timeout=60, check=False
        )
        py.append((time.perf_counter_ns() - t0) / 1e6)
    create["python"] = _exp(
        "ms", py, "python", ["python -c 'import argparse, ctypes': the box's own start-up"]
    )

    ctx.progress(f"os-virt: /bin/true in your box, {params.repeats} repeats")
    lim = BoxLimits("cost", 64, 64, 50, ["mkdir", "mkdirat"], params.timeout_s)
    times = ctx.scratch / "os-virt" / "times.json"
    walls: list[float] = []
    stages: dict[str, list[float]] = {}
    codes: list[int] = []
    for _ in range(params.repeats):
        run = run_box(box, rootfs, lim, ["/bin/true"], _name(), times)
        walls.append(run.wall_ns / 1e6)
        codes.append(run.code)
        prev = run.times.get("start")
        for key, label in BOX_STAGES:
            if prev is not None and key in run.times:
                stages.setdefault(label, []).append((run.times[key] - prev) / 1e6)
                prev = run.times[key]
    create["box"] = _exp(
        "ms",
        walls,
        "box",
        ["wall time of python box.py ... -- /bin/true; stages from its --times file (CLOCK_MONOTONIC)"],
        stages={k: _measure("ms", v) for k, v in stages.items()},
        counts={"nonzero_exits": sum(1 for c in codes if c != 0)},
    )

    notes: list[str] = []
    info = get_image("tiny", verify="quick")
    if "runc" in params.compare:
        if shutil.which("runc") is None and not Path("/usr/sbin/runc").exists():
            notes.append("runc: not installed (apt-get install runc)")
        elif os.geteuid() != 0:
            notes.append("runc: needs root here (a rootless spec is the fix: runc spec --rootless)")
        else:
            ctx.progress(f"os-virt: runc run, {params.repeats} repeats")
            bundle = _runc_bundle(ctx, info.rootfs_tar)
            state = ctx.scratch / "os-virt" / "runc-state"
            samples = []
            for _ in range(params.repeats):
                name = _name()
                t0 = time.perf_counter_ns()
                try:
                    subprocess.run(
                        ["runc", "--root", str(state), "run", "--bundle", str(bundle), name],
                        capture_output=True, timeout=60, check=True,
                    )  # fmt: skip
                finally:
                    subprocess.run(
                        ["runc", "--root", str(state), "delete", "-f", name], capture_output=True, check=False
                    )
                samples.append((time.perf_counter_ns() - t0) / 1e6)
            create["runc"] = _exp(
                "ms", samples, "runc", ["runc run of a bundle made from rootfs.tar, /bin/true"]
            )
    image = _docker_image() if {"docker", "runsc"} & set(params.compare) else None
    for kind in ("docker", "runsc"):
        if kind not in params.compare:
            continue
        if image is None:
            notes.append(f"{kind}: no Docker daemon here (make setup)")
            continue
        if kind == "runsc" and not _runsc_ok():
            notes.append("runsc: Docker has no runsc runtime (runsc install)")
            continue
        ctx.progress(
            f"os-virt: docker run{' --runtime runsc' if kind == 'runsc' else ''}, {params.repeats} repeats"
        )
        samples = []
        for _ in range(params.repeats):
            run = run_docker(image, ["/bin/true"], _name(), runtime="runsc" if kind == "runsc" else None)
            if run.code != 0:
                raise RuntimeError(f"docker run ({kind}) failed: {run.stderr.strip()[:200]}")
            samples.append(run.wall_ns / 1e6)
        create[kind] = _exp(
            "ms",
            samples,
            kind,
            [f"docker run --rm --network none{' --runtime runsc' if kind == 'runsc' else ''} tiny /bin/true"],
        )
    if notes:
        create["box"].provenance.notes.extend(notes)
    return {"ns-cost": ns, ctx.step_id: create}
