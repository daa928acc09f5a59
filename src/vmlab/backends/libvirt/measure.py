"""What the libvirt runtime measures of a guest from this host: QEMU's memory (guest RAM is the
mapping of the configured size), its exits (KVM's statistics) or TCG's translator counters, and the raw
view of QEMU's process and libvirt's statistics."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from vmlab.backends.base import ExecResult
from vmlab.backends.capabilities import (
    CapabilityMissing,
    MemorySample,
    ProcessMemory,
    TrapCounter,
    maps_from_psutil,
)
from vmlab.backends.libvirt import adapter as lv
from vmlab.errors import BackendError, VmlabError


class Guest(Protocol):
    """What is measured from (Guest): its QEMU process, its domain, its monitor, exec."""

    name: str
    resource: str
    accel: str
    dom: Any

    def pid(self) -> int | None: ...
    def monitor(self, hmp_command: str) -> str: ...
    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult: ...


def memory(inst: Guest) -> MemorySample:
    """QEMU's memory maps (guest RAM is the mapping of the configured size), with libvirt's view."""
    import psutil

    pid = inst.pid()
    if pid is None:
        raise CapabilityMissing(
            f"{inst.name}: QEMU's process is not visible from this host (remote libvirt?)",
            hint="run vmlab on the libvirt host",
        )
    try:
        p = psutil.Process(pid)
        full = p.memory_full_info()
        maps = tuple(maps_from_psutil(p.memory_maps(grouped=False)))
    except psutil.AccessDenied as e:
        raise CapabilityMissing(
            f"QEMU of {inst.name} is not readable by this user ({e})", hint="run vmlab as root"
        ) from e
    except psutil.Error as e:
        raise BackendError(f"{inst.name}: QEMU (pid {pid}) vanished while measured ({e})") from e
    dom_info, stats = lv.info(inst.dom, f"memory of {inst.resource}")
    max_kib = dom_info[1]
    extra = {f"libvirt_{k}": v for k, v in stats.items()}
    return MemorySample(
        processes=(ProcessMemory("qemu", pid, full.rss, full.uss, getattr(full, "pss", None), maps),),
        method="QEMU RSS minus the guest-RAM mapping's resident pages (memory maps)",
        guest_ram_bytes=int(max_kib) * 1024,
        code_cache=inst.accel == "tcg",
        extra=extra,
    )


def trap_counter(inst: Guest) -> TrapCounter:
    """KVM's exit statistics where the guest runs under KVM, else TCG's `info jit`."""
    from vmlab.backends import counters

    if inst.accel != "kvm":
        notes = [
            "the guest runs under TCG: there are no VM exits to count; these are the binary "
            "translator's counters (translation blocks, chained jumps) before and after each phase"
        ]
        try:
            version_note = counters.qemu_version_note(inst.monitor("info version"))
        except VmlabError:
            version_note = None  # the counters themselves say whether the monitor answers
        return CumulativeCounter(
            lambda: counters.parse_info_jit(inst.monitor("info jit")),
            counters.JIT_PROVIDER,
            "tb_count",
            [*notes, *([version_note] if version_note else [])],
            inst,
        )
    pid = inst.pid()
    if pid is not None and counters.read_debugfs_vm(pid) is not None:
        return CumulativeCounter(
            lambda: counters.read_debugfs_vm(pid) or {}, counters.DEBUGFS_PROVIDER, "exits", [], inst
        )
    root = os.geteuid() == 0
    raise CapabilityMissing(
        f"{inst.name} runs under KVM but no exit counter is readable"
        + ("" if root else " (debugfs is readable by root only)"),
        hint="mount -t debugfs none /sys/kernel/debug"
        + ("" if root else ", then run the traps experiment as root"),
    )


class CumulativeCounter:
    """A provider whose counters only grow (KVM statistics, `info jit`): a phase is a difference."""

    def __init__(
        self,
        read: Callable[[], dict[str, int]],
        provider: str,
        headline: str,
        notes: list[str],
        inst: Guest,
    ) -> None:
        self.read, self.provider, self.headline, self.notes, self.inst = read, provider, headline, notes, inst

    def snapshot(self) -> dict[str, int] | None:
        return self.read()

    def phase(self, name: str, command: str | None, idle_s: float) -> dict[str, int]:
        before = self.read()
        if command is None:
            time.sleep(idle_s)
        else:
            res = self.inst.exec(command, timeout=300)
            if not res.ok:
                raise BackendError(f"{name} workload in {self.inst.name} exited {res.rc}")
        after = self.read()
        return {k: after[k] - before.get(k, 0) for k in after}

    def close(self) -> None:
        """Nothing to release."""
