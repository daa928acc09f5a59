"""What creating one namespace costs: fork, unshare(kind), _exit, waitpid, against fork alone.

Run as a script in its own process (`python nscost.py REPEATS`), so the forks never happen inside
the lab's process (threads, signal handlers). Prints one JSON object: kind -> list of ns per repeat.
A normal user can create the other kinds only together with a user namespace: their rows are then
`user+KIND` and the `user` row is the part to subtract.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time

KINDS = {
    "user": 0x10000000,
    "pid": 0x20000000,
    "uts": 0x04000000,
    "ipc": 0x08000000,
    "mnt": 0x00020000,
    "net": 0x40000000,
    "cgroup": 0x02000000,
}


def once(flags: int, libc: ctypes.CDLL) -> int:
    t0 = time.perf_counter_ns()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if flags == 0 or libc.unshare(flags) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"unshare({flags:#x}) failed")
    return t1 - t0


def main(repeats: int) -> dict[str, list[int]]:
    libc = ctypes.CDLL(None, use_errno=True)
    root = os.geteuid() == 0
    rows: dict[str, list[int]] = {"fork": []}
    plan = {"fork": 0}
    for kind, flag in KINDS.items():
        if root or kind == "user":
            plan[kind] = flag
        else:
            plan[f"user+{kind}"] = flag | KINDS["user"]
    rows = {name: [] for name in plan}
    for _ in range(repeats):  # interleaved, so drift hits every kind alike
        for name, flags in plan.items():
            rows[name].append(once(flags, libc))
    return rows


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
