#!/usr/bin/env python3
"""box.py, your container runtime. It starts out running CMD with no isolation at all.

    python3 box.py --rootfs DIR [--hostname H] [--memory-mib M] [--pids-max P] [--cpu-pct C]
                   [--deny-syscall NAME ...] [--timeout S] [--name NAME] [--times FILE] -- CMD ARGS...

The lab runs this file with these options; keep the command line as it is and add isolation step by
step (the task sheet, labs/os-virt/README.md, says what each task checks):

  t1  PID and UTS namespaces: CMD is PID 1 and sees only its box's processes; --hostname is set
  t2  a mount namespace, pivot_root into --rootfs, /proc mounted inside; host files out of reach
  t3  a user namespace with a uid/gid map (root inside, your own uid outside)
  t4  a network namespace: loopback only
  t5  cgroups named --name: --memory-mib, --pids-max, --cpu-pct (v1 here, v2 on most laptops)
  t6  seccomp: every --deny-syscall call fails with EPERM
  t7  capabilities: drop all but a small set (a privileged operation such as raising priority fails)

Whatever the box creates must be gone when it exits: after CMD ends, a timeout (exit 124) or Ctrl-C.
Exit status: CMD's, 128+N when signal N killed it, 124 on timeout, 125 when the box itself failed.
Python 3.11 has no os.unshare: call libc through ctypes (ctypes.CDLL(None, use_errno=True).unshare).
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def run(args: argparse.Namespace) -> int:
    try:
        proc = subprocess.run(args.cmd, timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"box: timeout after {args.timeout} s", file=sys.stderr)
        return 124
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode


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
