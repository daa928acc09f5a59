"""Counting a container's system calls from inside, the way a normal user's runs do, checked as root
against a real container of the tiny image (which carries strace in its rootfs, not in the guest's
initramfs)."""

from __future__ import annotations

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


def test_idle_from_inside_attaches_or_says_why(shared_container: Any) -> None:
    from vmlab.backends.docker.strace import IdleNotMeasured

    try:
        idle = count_idle_syscalls(0, 1.0, where="container", container_id=shared_container.resource)
    except IdleNotMeasured as e:  # Yama ptrace_scope >= 1 refuses: the reason and the fix are given
        assert e.hint
        return
    assert idle["total"] >= 0


def test_the_guest_initramfs_has_no_strace(tiny_image: Any) -> None:
    data = tiny_image.initrd.read_bytes()
    assert b"usr/bin/strace" not in data and b"usr/sbin/dropbear" in data
