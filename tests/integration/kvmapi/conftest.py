"""Skips decided by opening the real /dev/kvm; a leak detector for fds and mappings."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def kvm_device() -> str:
    """The KVM device, or a skip saying why it cannot be used."""
    path = "/dev/kvm"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        from tests.conftest import unavailable

        unavailable(path, f"cannot be opened: {e.strerror}")
    os.close(fd)
    return path


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _kvm_maps() -> int:
    text = Path("/proc/self/maps").read_text()
    return sum(1 for line in text.splitlines() if "kvm-vcpu" in line or "anon_inode:kvm" in line)


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fails the test if it leaves an fd or a vCPU mapping behind (guest RAM maps are anonymous, so
    their release is checked through the fd tree: a VM fd keeps its memory slots alive)."""
    before_fds, before_maps = _fds(), _kvm_maps()
    yield
    leaked = {fd: _target(fd) for fd in _fds() - before_fds}
    leaked = {fd: t for fd, t in leaked.items() if t is not None}
    assert not leaked, f"leaked fds: {leaked}"
    assert _kvm_maps() == before_maps, "a kvm_run mapping was not released"


def _target(fd: str) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None  # the fd listing itself, already closed
