"""Counting a container's system calls from inside, the way a normal user's runs do, checked as root
against a real container of the tiny image (which carries strace in its rootfs, not in the guest's
initramfs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vmlab.backends.docker.strace import INSIDE_PROVIDER, count_exec_syscalls, count_idle_syscalls, plan

pytestmark = [pytest.mark.docker]


def test_a_normal_user_is_planned_inside(shared_container: Any) -> None:
    how = plan(shared_container.resource, euid=1000)
    assert (how.where, how.provider) == ("container", INSIDE_PROVIDER)
    assert plan(shared_container.resource, euid=0).where == "host"


def test_inside_counts_one_write_per_line(shared_container: Any) -> None:
    got = count_exec_syscalls(
        shared_container.resource, "for i in 1 2 3 4 5; do echo $i > /dev/null; done", where="container"
    )
    assert got.rc == 0
    assert got.counts["write"] >= 5 and got.counts["total"] > got.counts["write"]


def test_inside_exit_code_is_the_workloads(shared_container: Any) -> None:
    got = count_exec_syscalls(shared_container.resource, "exit 3", where="container")
    assert got.rc == 3 and got.counts["total"] >= 1


def yama_ptrace_scope() -> int:
    """The kernel's Yama ptrace_scope (0 where Yama is not built in): read here, not by vmlab."""
    scope = Path("/proc/sys/kernel/yama/ptrace_scope")
    return int(scope.read_text()) if scope.exists() else 0


def test_idle_from_inside_attaches_or_says_why(shared_container: Any) -> None:
    """strace in the container attaches to its init, which is no child of it: Yama's ptrace_scope >= 1
    refuses that without CAP_SYS_PTRACE (Docker gives none), so the phase must say why; at 0 it must
    be measured (same uid, and Docker's default seccomp profile allows ptrace)."""
    from vmlab.backends.docker.strace import IdleNotMeasured

    if yama_ptrace_scope() >= 1:
        with pytest.raises(IdleNotMeasured) as refused:
            count_idle_syscalls(0, 1.0, where="container", container_id=shared_container.resource)
        assert refused.value.hint
    else:
        idle = count_idle_syscalls(0, 1.0, where="container", container_id=shared_container.resource)
        assert idle["total"] >= 0


def test_the_guest_initramfs_has_no_strace(tiny_image: Any) -> None:
    data = tiny_image.initrd.read_bytes()
    assert b"usr/bin/strace" not in data and b"usr/sbin/dropbear" in data
