"""Kernel features a step may `require`: user namespaces (`userns`), and a cgroup hierarchy this user
may write (`cgroup-write`).

Named in vmlab.host.requirements; an unmet one makes the step `skipped` with the reason and the fix.
Each probe is a parser of what it reads (sysctl files, the cgroup tree), given as arguments so the unit
tests can fake them; the defaults read the running host.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from vmlab.host.unmet import Unmet

SYSCTL = Path("/proc/sys")
CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def userns_unmet(
    read: Callable[[Path], str | None] = _read, euid: int | None = None, has_ns: bool | None = None
) -> Unmet | None:
    """Can this user create a user namespace? The kernel's own switch (user.max_user_namespaces), and
    for a normal user Debian's and Ubuntu's (kernel.unprivileged_userns_clone,
    kernel.apparmor_restrict_unprivileged_userns). A file that does not exist is a switch this kernel
    lacks, so it does not forbid anything."""
    uid = os.geteuid() if euid is None else euid
    if not (Path("/proc/self/ns/user").exists() if has_ns is None else has_ns):
        return Unmet(
            "userns", "this kernel has no user namespaces (CONFIG_USER_NS)", "a kernel built with them"
        )
    if read(SYSCTL / "user" / "max_user_namespaces") == "0":
        return Unmet(
            "userns",
            "user namespaces are switched off (user.max_user_namespaces = 0)",
            "sysctl -w user.max_user_namespaces=15000 as root (a file in /etc/sysctl.d keeps it)",
        )
    if uid == 0:
        return None
    if read(SYSCTL / "kernel" / "unprivileged_userns_clone") == "0":
        return Unmet(
            "userns",
            "a normal user may not create user namespaces (kernel.unprivileged_userns_clone = 0)",
            "sysctl -w kernel.unprivileged_userns_clone=1 as root, or run the step as root",
        )
    if read(SYSCTL / "kernel" / "apparmor_restrict_unprivileged_userns") == "1":
        return Unmet(
            "userns",
            "AppArmor keeps normal users from user namespaces "
            "(kernel.apparmor_restrict_unprivileged_userns = 1)",
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 as root, or run the step as root",
        )
    return None


def cgroup_write_unmet(
    root: Path = CGROUP_ROOT, writable: Callable[[Path], bool] | None = None
) -> Unmet | None:
    """May this user make the box's cgroups where box.py makes them: /sys/fs/cgroup/NAME on v2 (with the
    memory and pids controllers available), /sys/fs/cgroup/{memory,pids,cpu}/NAME on v1?"""
    can_write = writable or (lambda p: os.access(p, os.W_OK))
    controllers = root / "cgroup.controllers"
    if controllers.exists():
        have = (_read(controllers) or "").split()
        missing = [c for c in ("memory", "pids") if c not in have]
        if missing:
            return Unmet(
                "cgroup-write",
                f"cgroup v2 without the {' and '.join(missing)} controller at {root}",
                "boot with those controllers enabled (systemd does by default)",
            )
        if not can_write(root / "cgroup.procs"):
            return Unmet(
                "cgroup-write",
                f"cgroup v2: {root} is not writable by this user",
                "run the step as root",
            )
        return None
    dirs = [root / c for c in V1_CONTROLLERS]
    absent = [d.name for d in dirs if not d.is_dir()]
    if absent:
        return Unmet(
            "cgroup-write",
            f"no cgroup v1 hierarchy for {', '.join(absent)} under {root}",
            "mount it (mount -t cgroup -o NAME cgroup /sys/fs/cgroup/NAME) or boot with cgroup v2",
        )
    locked = [d.name for d in dirs if not can_write(d)]
    if locked:
        return Unmet(
            "cgroup-write",
            f"cgroup v1: {', '.join(locked)} under {root} not writable by this user",
            "run the step as root (a normal user cannot write cgroup v1)",
        )
    return None


def userns() -> Unmet | None:
    return userns_unmet()


def cgroup_write() -> Unmet | None:
    return cgroup_write_unmet()
