"""Typed capabilities an instance offers to experiments, instead of runtime-specific dictionaries.

An experiment asks an instance for a capability (`inst.memory()`, `inst.trap_counter()`,
`inst.guest_uptime()`); a runtime that lacks one raises `CapabilityMissing` with the reason and the
fix, and the experiment records `skipped` rather than branching on the kind. Only runtimes speak
Docker, libvirt or psutil: what crosses this boundary are the plain values below.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from vmlab.errors import NotAvailable

MIB = 1024 * 1024


class CapabilityMissing(NotAvailable):
    """This runtime (or this user on this host) cannot provide the capability asked for."""


@dataclass(frozen=True)
class MapEntry:
    """One memory mapping of a host process (psutil's memory_maps(grouped=False) row)."""

    path: str
    size: int
    rss: int
    pss: int
    private: int  # private_clean + private_dirty: what USS adds up

    @property
    def anonymous(self) -> bool:
        return self.path in ("", "[anon]") or self.path.startswith("[anon:")


def maps_from_psutil(maps: Iterable[object]) -> list[MapEntry]:
    """psutil's memory_maps(grouped=False) rows to MapEntry (attribute names are psutil's)."""
    entries = []
    for m in maps:
        addr = str(getattr(m, "addr", "0-0"))
        lo, _, hi = addr.partition("-")
        size = int(hi, 16) - int(lo, 16) if hi else int(getattr(m, "size", 0))
        entries.append(
            MapEntry(
                path=str(getattr(m, "path", "")),
                size=size,
                rss=int(getattr(m, "rss", 0)),
                pss=int(getattr(m, "pss", 0)),
                private=int(getattr(m, "private_clean", 0)) + int(getattr(m, "private_dirty", 0)),
            )
        )
    return entries


@dataclass(frozen=True)
class ProcessMemory:
    """A host process the runtime runs for the instance: QEMU; a container shim; gVisor's Sentry, Gofer."""

    role: str
    pid: int
    rss: int
    uss: int
    pss: int | None = None
    maps: tuple[MapEntry, ...] = ()  # filled where the experiment must find guest RAM by its size


@dataclass(frozen=True)
class MemorySample:
    """Where an instance's memory is, as the host sees it, at one moment.

    `guest_ram_bytes` is set for a system VM: its RAM is one anonymous mapping of that size inside the
    VMM process, found by the experiment in `maps`. `workload_bytes` is what the runtime charges to
    the workload itself (a container's cgroup usage). `code_cache` says a binary translator's code
    buffer is among the maps (QEMU under TCG).
    """

    processes: tuple[ProcessMemory, ...]
    method: str  # one line for the report: how overhead and workload memory were told apart
    guest_ram_bytes: int | None = None
    code_cache: bool = False
    workload_bytes: int | None = None
    extra: dict[str, int] = field(default_factory=dict)


class TrapCounter(Protocol):
    """A named provider of trap counts: VM exits, translation blocks, or system calls.

    `snapshot()` returns cumulative counters (KVM's statistics, `info jit`, the Sentry's handled
    system calls) or None when the provider only counts what it runs itself (strace of a command);
    `phase()` runs one workload phase (None: stay idle `idle_s` seconds) and returns its counts.
    `headline` names the counter that sums up a phase; `notes` go into the report's provenance.
    """

    provider: str
    headline: str
    notes: list[str]

    def snapshot(self) -> dict[str, int] | None: ...
    def phase(self, name: str, command: str | None, idle_s: float) -> dict[str, int]: ...
    def close(self) -> None: ...


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}
