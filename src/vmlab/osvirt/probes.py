"""The probes run inside a box (and Docker, gVisor): POSIX sh scripts and the parsing of their output.

Every probe is a line of POSIX sh run as the box's command, so the same script runs in the box (busybox
of the tiny image), in the skeleton (the host's /bin/sh) and in `docker run`; it uses builtins where a
fork could fail (the pids limit) and writes nothing outside /tmp. The lab's steps (lab.py, limits.py)
and the tutors' re-run (rerun.py) use the same scripts.
"""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path

from vmlab.osvirt.box import BoxRun
from vmlab.report.model import Experiment, Provenance

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


# ---- the limits' scripts ------------------------------------------------------------------------


def alloc_script(nbytes: int) -> str:
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
