#!/usr/bin/env python3
"""box.py, the tutors' model: a container built by hand from the kernel's primitives.

    python3 box.py --rootfs DIR [--hostname H] [--memory-mib M] [--pids-max P] [--cpu-pct C]
                   [--deny-syscall NAME ...] [--timeout S] [--name NAME] [--times FILE] -- CMD ARGS...

Three processes: this one (the supervisor: cgroups, timeout, clean-up), a child that joins the cgroups
and unshares the user, PID, UTS, mount, network and IPC namespaces, and the grandchild, PID 1 of the new
PID namespace, which sets the hostname, pivots into the root file system, mounts /proc, brings up
loopback, drops capabilities, installs a seccomp filter and execs CMD. Python 3.11 has no os.unshare,
so the system calls go through ctypes. Everything the box makes goes away in `finally`: the namespaces
die with their last process (PR_SET_PDEATHSIG ties it to the supervisor), the cgroup directories are
emptied and removed, also after a timeout or Ctrl-C. Exit status: CMD's, 128+N when a signal N killed
it, 124 on timeout, 125 when the box itself failed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import os
import platform
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 24, 38, 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
X32_SYSCALL_BIT = 0x40000000  # x86_64: the x32 ABI's calls are the same numbers with this bit set
EPERM = 1
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# system call numbers (asm/unistd.h) of the calls one may deny; aarch64 has no plain mkdir
SYSCALLS = {
    "x86_64": {"mkdir": 83, "mkdirat": 258, "rmdir": 84, "unlinkat": 263, "chmod": 90, "uname": 63},
    "aarch64": {"mkdirat": 34, "unlinkat": 35, "uname": 160},
}
CAP_LAST = 40  # CAP_CHECKPOINT_RESTORE; higher numbers fail with EINVAL and are skipped
# Docker's default set (moby oci/caps/defaults.go): chown, dac_override, fowner, fsetid, kill, setgid,
# setuid, setpcap, net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap
KEEP_CAPS = {0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def unshare(flags: int) -> None:
    _check(libc.unshare(flags), "unshare")


def mount(src: str | None, target: str, fstype: str | None, flags: int) -> None:
    def enc(s):
        return s.encode() if s is not None else None

    _check(libc.mount(enc(src), target.encode(), enc(fstype), ctypes.c_ulong(flags), None), f"mount {target}")


def pivot_root(new: str, old: str) -> None:
    nr = SYS_PIVOT_ROOT[platform.machine()]
    _check(libc.syscall(nr, new.encode(), old.encode()), "pivot_root")


def prctl(option: int, arg: int, arg3: int = 0) -> None:
    _check(libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(arg3), 0, 0), f"prctl {option}")


def write(path: str | Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


# ---- cgroups: v1 per-controller hierarchies, or the v2 unified tree ------------------------------


def cgroup_dirs(name: str) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return [root / name]
    return [root / c / name for c in ("memory", "pids", "cpu") if (root / c).is_dir()]


def cgroup_setup(
    made: list[Path], name: str, memory_mib: int | None, pids_max: int | None, cpu_pct: int | None
) -> None:
    """Create and limit the box's cgroups into `made` (so a failure half-way still cleans up); none
    when this user may not (a normal user on cgroup v1)."""
    root = Path("/sys/fs/cgroup")
    if not os.access(root / ("cgroup.procs" if (root / "cgroup.controllers").exists() else "pids"), os.W_OK):
        print("box: cgroups not writable here: no limits (run as root)", file=sys.stderr)
        return
    v2 = (root / "cgroup.controllers").exists()
    if v2:
        write(root / "cgroup.subtree_control", "+memory +pids +cpu")
    for d in cgroup_dirs(name):
        d.mkdir()  # FileExistsError: another box of that name runs; never take its cgroup over
        made.append(d)
        if v2:
            if memory_mib:
                write(d / "memory.max", str(memory_mib << 20))
                write(d / "memory.swap.max", "0")
            if pids_max:
                write(d / "pids.max", str(pids_max))
            if cpu_pct:
                write(d / "cpu.max", f"{cpu_pct * 1000} 100000")
        elif d.parent.name == "memory" and memory_mib:
            write(d / "memory.limit_in_bytes", str(memory_mib << 20))
            if (d / "memory.memsw.limit_in_bytes").exists():
                write(d / "memory.memsw.limit_in_bytes", str(memory_mib << 20))
        elif d.parent.name == "pids" and pids_max:
            write(d / "pids.max", str(pids_max))
        elif d.parent.name == "cpu" and cpu_pct:
            write(d / "cpu.cfs_period_us", "100000")
            write(d / "cpu.cfs_quota_us", str(cpu_pct * 1000))


def cgroup_remove(dirs: list[Path]) -> None:
    """Kill what is left in the box's cgroups, then remove them (a cgroup with tasks cannot go)."""
    for d in dirs:
        for _ in range(200):
            try:
                pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
            except FileNotFoundError:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)


# ---- inside: seccomp, capabilities, loopback ------------------------------------------------------


def seccomp_deny(names: list[str]) -> None:
    """A BPF filter by hand: a listed call -> EPERM, anything else allowed. A call of another
    architecture (i386 through int 0x80 on x86_64) or of the x32 ABI (the number | 0x40000000) would
    reach the kernel with other numbers, past the checks: the filter kills the process instead, as
    libseccomp's default for a foreign architecture does."""
    arch = platform.machine()
    table = SYSCALLS[arch]
    nrs = [table[n] for n in names if n in table]
    # struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }; seccomp_data: nr at 0, arch at 4
    ld_w_abs, jeq_k, jge_k, ret_k = 0x20, 0x15, 0x35, 0x06
    kill = (ret_k, 0, 0, SECCOMP_RET_KILL_PROCESS)
    prog = [(ld_w_abs, 0, 0, 4), (jeq_k, 1, 0, AUDIT_ARCH[arch]), kill, (ld_w_abs, 0, 0, 0)]
    if arch == "x86_64":
        prog += [(jge_k, 0, 1, X32_SYSCALL_BIT), kill]
    for i, nr in enumerate(nrs):
        prog.append((jeq_k, len(nrs) - i, 0, nr))  # to the final ERRNO
    prog += [(ret_k, 0, 0, SECCOMP_RET_ALLOW), (ret_k, 0, 0, SECCOMP_RET_ERRNO | EPERM)]
    buf = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    filt = ctypes.create_string_buffer(buf)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.cast(filt, ctypes.c_void_p))
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")


def drop_caps() -> None:
    """Drop every capability outside KEEP_CAPS from the bounding set: exec then leaves only those."""
    for cap in range(CAP_LAST + 1):
        if cap not in KEEP_CAPS:
            try:
                prctl(PR_CAPBSET_DROP, cap)
            except OSError as e:
                if e.errno != 22:  # EINVAL: the kernel does not know this capability
                    raise


def loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, siocgifflags, ifr))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))


# ---- the three processes ---------------------------------------------------------------------------


def init(args: argparse.Namespace, times: dict[str, int], tfd: int) -> None:
    """PID 1 of the box: never returns (exec or _exit)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    t = time.monotonic_ns
    if args.hostname:
        name = args.hostname.encode()
        _check(libc.sethostname(name, len(name)), "sethostname")
    times["uts"] = t()
    rootfs = str(Path(args.rootfs).resolve())
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    times["mounts"] = t()
    old = os.path.join(rootfs, ".oldroot")
    os.makedirs(old, exist_ok=True)
    pivot_root(rootfs, old)
    os.chdir("/")
    times["pivot_root"] = t()
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _check(libc.umount2(b"/.oldroot", MNT_DETACH), "umount old root")
    os.rmdir("/.oldroot")
    times["proc"] = t()
    loopback_up()
    times["net"] = t()
    drop_caps()
    times["caps"] = t()
    if args.deny_syscall:
        seccomp_deny(args.deny_syscall)
    times["seccomp"] = t()
    os.write(tfd, json.dumps(times).encode())
    os.close(tfd)
    os.execvpe(args.cmd[0], args.cmd, {"PATH": "/bin:/sbin:/usr/bin:/usr/sbin", "HOME": "/"})


def child(args: argparse.Namespace, cgroups: list[Path], tfd: int) -> int:
    """Join the cgroups, unshare every namespace, map root, fork PID 1 and pass on its status."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    for d in cgroups:
        write(d / "cgroup.procs", str(os.getpid()))
    times = {"cgroup_join": time.monotonic_ns()}
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC)
    times["unshare"] = time.monotonic_ns()
    write("/proc/self/setgroups", "deny")
    write("/proc/self/uid_map", f"0 {uid} 1")
    write("/proc/self/gid_map", f"0 {gid} 1")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    times["userns_map"] = time.monotonic_ns()
    pid = os.fork()
    if pid == 0:
        try:
            times["fork"] = time.monotonic_ns()
            init(args, times, tfd)
        except BaseException as e:
            print(f"box: {e}", file=sys.stderr)
        os._exit(125)
    os.close(tfd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def run(args: argparse.Namespace) -> int:
    name = args.name or f"vmlab-box-{os.getpid()}"
    t0 = time.monotonic_ns()
    cgroups: list[Path] = []
    pid = 0
    rfd, wfd = os.pipe()
    code = 125
    try:
        cgroup_setup(cgroups, name, args.memory_mib, args.pids_max, args.cpu_pct)
        t_cg = time.monotonic_ns()
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            try:
                os._exit(child(args, cgroups, wfd))
            except BaseException as e:
                print(f"box: {e}", file=sys.stderr)
                os._exit(125)
        os.close(wfd)
        wfd = -1
        pidfd = os.pidfd_open(pid)
        ready, _, _ = select.select([pidfd], [], [], args.timeout)
        os.close(pidfd)
        if not ready:
            print(f"box: timeout after {args.timeout} s", file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            code = 124
        else:
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        pid = 0
        t_end = time.monotonic_ns()
        if args.times:
            inner = json.loads(os.read(rfd, 65536) or b"{}")
            stamps = {"start": t0, "cgroup_setup": t_cg, **inner, "exit": t_end}
            write(args.times, json.dumps(stamps))
        return code
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        cgroup_remove(cgroups)
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="box.py", description="run CMD in a container built by hand")
    p.add_argument("--rootfs", required=True, help="the root file system (an unpacked rootfs.tar)")
    p.add_argument("--hostname")
    p.add_argument("--memory-mib", type=int)
    p.add_argument("--pids-max", type=int)
    p.add_argument("--cpu-pct", type=int)
    p.add_argument("--deny-syscall", action="append", default=[])
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--name", help="the cgroup directories' name")
    p.add_argument("--times", help="write stage timestamps (CLOCK_MONOTONIC ns) as JSON here")
    p.add_argument("cmd", nargs="+")
    return p.parse_args(argv)


if __name__ == "__main__":
    try:
        sys.exit(run(parse(sys.argv[1:])))
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as e:
        print(f"box: {e}", file=sys.stderr)
        sys.exit(125)
