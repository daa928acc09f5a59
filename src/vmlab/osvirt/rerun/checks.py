"""The hidden checks of the os-virt re-run: what the host saw of the probe shell, what it answered, what
its calls did, per task (see the package's docstring for claims, skips and faults)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from vmlab.osvirt.outside import CAP_SYS_NICE, View

if TYPE_CHECKING:
    from vmlab.grade.rerun import RerunContext
    from vmlab.osvirt.rerun.model import Hidden, Outcome, RerunParams
    from vmlab.report.model import CheckResult

EPERM_TEXT = "Operation not permitted"


def judge(
    ctx: RerunContext,
    p: RerunParams,
    h: Hidden,
    claimed: dict[str, bool],
    ran: dict[str, bool],
    probe: Outcome,
    effects: dict[str, bool],
    mem: Outcome | None,
    fork: Outcome | None,
    root_id: tuple[int, int],
    uid: int,
) -> list[CheckResult]:
    from vmlab.osvirt.rerun.model import STEP_OF_TASK, full_range

    out: list[CheckResult] = []
    v = probe.view
    said = probe.answers()
    jail_ns = probe.jail_ns
    tail = probe.stderr.strip().splitlines()[-1][:160] if probe.stderr.strip() else "no message"
    unseen = f"no probe shell to look at: the box exited {probe.code} ({tail})"

    def add(task: str, cid: str, test: Callable[[View], tuple[bool, str]], description: str) -> None:
        if not ran[task]:
            msg = f"the report did not run step {STEP_OF_TASK[task]}: nothing to compare"
            out.append(ctx.check(cid, None, msg, skipped=True, task=task, description=description))
            return
        ok, measured = test(v) if v is not None else (False, unseen)
        out.append(
            ctx.check(
                cid,
                ok,
                "" if ok else measured,
                claimed=claimed[task],
                task=task,
                measured=measured,
                description=description,
            )
        )

    def differs(kind: str, x: View) -> bool:
        return kind in jail_ns and x.ns.get(kind) != jail_ns[kind]

    add(
        "t1-pid-uts",
        "hidden-pid1",
        lambda x: (
            len(x.nspid) >= 3 and x.nspid[-1] == 1 and said.get("pid") == "1",
            f"PIDs {x.nspid} (host, jail, ...); the shell said pid={said.get('pid')}",
        ),
        "the probe shell is PID 1 of a PID namespace of its own (NSpid, seen from the host)",
    )
    add(
        "t1-pid-uts",
        "hidden-pid-ns",
        lambda x: (
            differs("pid", x) and x.in_pidns <= 2,
            f"{x.in_pidns} processes in its PID namespace"
            + ("" if differs("pid", x) else " (the jail's own)"),
        ),
        "only the box's processes share its PID namespace",
    )
    want_host = f"box-{h.host_n}"
    add(
        "t1-pid-uts",
        "hidden-hostname",
        lambda x: (
            x.hostname == want_host and differs("uts", x) and said.get("hostname") == want_host,
            f"hostname {x.hostname!r} in its UTS namespace (hidden: {want_host})",
        ),
        "the hidden hostname, set in a UTS namespace of the box's own",
    )
    add(
        "t2-mount",
        "hidden-root",
        lambda x: (
            x.root == root_id and differs("mnt", x),
            "its root is the given root file system" if x.root == root_id else "its root is another folder",
        ),
        "pivot_root into --rootfs, in a mount namespace of its own",
    )
    add(
        "t2-mount",
        "hidden-file",
        lambda x: (not probe.reach, "reachable" if probe.reach else "unreachable"),
        "a hidden file next to the root file system is out of reach (no old root, no host mount left)",
    )
    add(
        "t2-mount",
        "hidden-mounts",
        lambda x: (2 <= len(x.mountinfo) <= 8, f"{len(x.mountinfo)} mounts"),
        "its mount table holds its root and /proc, not the host's mounts",
    )
    host_user = os.stat("/proc/self/ns/user").st_ino
    add(
        "t3-user",
        "hidden-userns",
        lambda x: (
            x.ns.get("user") != host_user
            and not full_range(x.uid_map)
            and any(r[:2] == [0, uid] for r in x.uid_map),
            f"uid_map {x.uid_map} (the jail's user is {uid})",
        ),
        "a user namespace that maps root inside to the jail's user outside, nothing more",
    )
    add(
        "t4-net",
        "hidden-net",
        lambda x: (x.netifs == ["lo"], f"interfaces {','.join(x.netifs)} (the jail has {h.iface})"),
        "loopback only, in a jail whose own network namespace has another interface",
    )
    if mem is not None and fork is not None:
        want = {"memory": str(h.memory_mib << 20), "pids": str(h.pids_max)}
        add(
            "t5-cgroups",
            "hidden-limits",
            lambda x: (x.limits == want, f"limits {x.limits} (hidden: {want})"),
            "the shell's cgroups hold the hidden memory and pids limits, read from the host",
        )
        status = mem.answers().get("alloc_status")
        add(
            "t5-cgroups",
            "hidden-oom",
            lambda x: (status == "137", f"status {status} allocating twice {h.memory_mib} MiB"),
            "twice the hidden memory limit ends in an OOM kill (137)",
        )
        started = fork.answers().get("started", "")
        n = int(started) if started.isdigit() else -1
        add(
            "t5-cgroups",
            "hidden-pids",
            lambda x: (h.pids_max - 4 <= n <= h.pids_max - 1, f"{n} forks under pids.max {h.pids_max}"),
            "the fork chain stops just below the hidden pids.max",
        )
        left = probe.left + mem.left + fork.left
        add(
            "t5-cgroups",
            "hidden-cleanup",
            lambda x: (left == 0, f"{left} cgroup directories left by the box"),
            "the box removed its cgroups itself every time",
        )
    elif ran["t5-cgroups"]:
        add(
            "t5-cgroups",
            "hidden-limits",
            lambda x: (False, "not tried: the probe run hit the deadline"),
            "the hidden limits",
        )
    add(
        "t6-seccomp",
        "hidden-seccomp",
        lambda x: (
            x.seccomp == "2"
            and said.get("denied") == EPERM_TEXT
            and not effects["denied_took_effect"]
            and said.get("mkdir") == "allowed"
            and effects["mkdir_made"],
            f"Seccomp {x.seccomp}; {h.deny}: {said.get('denied')}"
            f"{' (it took effect)' if effects['denied_took_effect'] else ''}; mkdir: {said.get('mkdir')}"
            f"{'' if effects['mkdir_made'] else ' (nothing made)'}",
        ),
        f"the hidden call ({h.deny}) fails with EPERM and does nothing; mkdir, not denied this time, works",
    )
    add(
        "t7-caps",
        "hidden-caps",
        lambda x: (
            1 <= x.caps <= p.max_caps
            and not (x.cap_eff >> CAP_SYS_NICE) & 1
            and said.get("priv") == "denied",
            f"{x.caps} effective capabilities ({x.cap_eff:#x}); renice: {said.get('priv')}",
        ),
        "a small capability set without CAP_SYS_NICE, read from the host; raising the priority fails",
    )
    return out
