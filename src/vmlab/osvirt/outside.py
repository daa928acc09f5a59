"""What a process in a box is, seen from the host (as root): its namespaces, root, mounts, interfaces,
uid map, capabilities, seccomp mode and cgroups, read from /proc/PID, never from what the box prints.

The tutors' re-run (rerun.py) reads this while the probe shell waits: a box can print any answers, but
not change what the kernel says about its processes.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

NS_KINDS = ("pid", "mnt", "net", "uts", "ipc", "user")
CAP_SYS_NICE = 23


@dataclass
class View:
    pid: int
    nspid: list[int] = field(default_factory=list)  # this process's PID in each nested namespace
    ns: dict[str, int] = field(default_factory=dict)  # kind -> namespace inode
    root: tuple[int, int] = (0, 0)  # device and inode of /proc/PID/root
    mountinfo: list[str] = field(default_factory=list)
    netifs: list[str] = field(default_factory=list)
    uid_map: list[list[int]] = field(default_factory=list)
    cap_eff: int = 0
    seccomp: str = ""
    cgroups: dict[str, str] = field(default_factory=dict)  # controller ("" on v2) -> path in its hierarchy
    hostname: str | None = None
    in_pidns: int = 0  # processes in its PID namespace
    limits: dict[str, str] = field(default_factory=dict)  # memory, pids: the limits of its cgroups now

    @property
    def caps(self) -> int:
        return bin(self.cap_eff).count("1")


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def _ns(pid: int | str, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def ns_of(pid: int | str) -> dict[str, int]:
    return {k: _ns(pid, k) for k in NS_KINDS}


def find_shell(uid: int, nonce: str) -> int | None:
    """The probe shell: a process of the jail's uid (seen from the host) that is no Python and whose
    command line holds the run's nonce; the deepest in nested PID namespaces, the oldest first."""
    found: list[tuple[int, int]] = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            st = _status(int(d.name))
            if int(st.get("Uid", "-1").split()[0]) != uid or st.get("Name", "").startswith("python"):
                continue
            if nonce.encode() not in (d / "cmdline").read_bytes():
                continue
            found.append((-len(st.get("NSpid", "").split()), int(d.name)))
        except (OSError, ValueError, IndexError):
            continue
    return min(found)[1] if found else None


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def children_of(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if parent_of(int(d.name)) == pid:
                    kids.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return kids


def view(pid: int) -> View:
    """Everything the re-run compares, read at once (raises OSError when the process is gone)."""
    st = _status(pid)
    v = View(pid)
    v.nspid = [int(x) for x in st.get("NSpid", "").split()]
    v.ns = ns_of(pid)
    r = os.stat(f"/proc/{pid}/root")
    v.root = (r.st_dev, r.st_ino)
    v.mountinfo = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    v.netifs = [
        line.split(":")[0].strip() for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    ]
    v.uid_map = [
        [int(x) for x in line.split()] for line in Path(f"/proc/{pid}/uid_map").read_text().splitlines()
    ]
    v.cap_eff = int(st.get("CapEff", "0"), 16)
    v.seccomp = st.get("Seccomp", "")
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            v.cgroups[c] = path
    v.limits = cgroup_limits(v.cgroups)
    p = subprocess.run(
        ["nsenter", f"--target={pid}", "--uts", "cat", "/proc/sys/kernel/hostname"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    v.hostname = p.stdout.strip() if p.returncode == 0 else None
    v.in_pidns = 0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                v.in_pidns += _ns(d.name, "pid") == v.ns["pid"]
            except OSError:
                continue
    return v


def _fs_path(path: Path) -> tuple[str, str] | None:
    """(major:minor, the path inside its file system) of a host path, from the host's mount table."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    best: tuple[int, str] | None = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        f = line.split()
        if f[2] != dev:
            continue
        point = f[4]
        p = str(path)
        if (p == point or p.startswith(point.rstrip("/") + "/")) and (best is None or len(point) > best[0]):
            rest = p[len(point.rstrip("/")) :]
            best = (len(point), f[3].rstrip("/") + rest)
    return (dev, best[1]) if best else None


def reachable(path: Path, v: View) -> bool:
    """Can the process reach the host file `path`: through its root, or through any mount of its mount
    table that holds the file's file system at or above the file (the old root left mounted, a chroot
    that kept the host's tree, a bind of a host folder)?"""
    if os.path.lexists(f"/proc/{v.pid}/root{path}"):
        return True
    where = _fs_path(path)
    if where is None:
        return False
    dev, inner = where
    for line in v.mountinfo:
        f = line.split()
        if len(f) > 4 and f[2] == dev:
            root = f[3].rstrip("/")
            if inner == root or inner.startswith(root + "/"):
                return True
    return False


def cgroup_limits(cgroups: dict[str, str], root: Path = Path("/sys/fs/cgroup")) -> dict[str, str]:
    """The memory limit (bytes) and pids.max of a process's cgroups, from the host's cgroup tree."""
    out: dict[str, str] = {}
    if "" in cgroups and (root / "cgroup.controllers").exists():
        files = {
            "memory": root / cgroups[""].lstrip("/") / "memory.max",
            "pids": root / cgroups[""].lstrip("/") / "pids.max",
        }
    else:
        files = {
            "memory": root / "memory" / cgroups.get("memory", "/").lstrip("/") / "memory.limit_in_bytes",
            "pids": root / "pids" / cgroups.get("pids", "/").lstrip("/") / "pids.max",
        }
    for k, f in files.items():
        try:
            out[k] = f.read_text().strip()
        except OSError:
            continue
    return out
