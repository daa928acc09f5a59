"""Exit reasons of `struct kvm_run` and their decoded forms.

KVM_RUN returns to user space only for what the kernel cannot handle itself; `exit_reason` says why,
and the union at offset 32 holds the details. Every reason gets a name, unknown numbers included.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from enum import IntEnum

from vmlab.kvmapi.structs import KVM_RUN_EXIT_REASON_OFFSET, KVM_RUN_UNION_OFFSET


class ExitReason(IntEnum):
    UNKNOWN = 0
    EXCEPTION = 1
    IO = 2
    HYPERCALL = 3
    DEBUG = 4
    HLT = 5
    MMIO = 6
    IRQ_WINDOW_OPEN = 7
    SHUTDOWN = 8
    FAIL_ENTRY = 9
    INTR = 10
    SET_TPR = 11
    TPR_ACCESS = 12
    S390_SIEIC = 13
    S390_RESET = 14
    DCR = 15
    NMI = 16
    INTERNAL_ERROR = 17
    OSI = 18
    PAPR_HCALL = 19
    S390_UCONTROL = 20
    WATCHDOG = 21
    S390_TSCH = 22
    EPR = 23
    SYSTEM_EVENT = 24
    S390_STSI = 25
    IOAPIC_EOI = 26
    HYPERV = 27
    ARM_NISV = 28
    X86_RDMSR = 29
    X86_WRMSR = 30
    DIRTY_RING_FULL = 31
    AP_RESET_HOLD = 32
    X86_BUS_LOCK = 33
    XEN = 34
    RISCV_SBI = 35
    RISCV_CSR = 36
    NOTIFY = 37


def reason_name(code: int) -> str:
    """The short name students see (IO, HLT, MMIO, ...); unknown numbers stay visible as UNKNOWN_<n>."""
    try:
        return ExitReason(code).name
    except ValueError:
        return f"UNKNOWN_{code}"


INTERNAL_SUBERRORS = {
    1: "EMULATION (the in-kernel instruction emulator could not handle an instruction)",
    2: "SIMUL_EX (an exception while delivering another)",
    3: "DELIVERY_EV (an exit while delivering an event)",
    4: "UNEXPECTED_EXIT_REASON",
}

IO_IN, IO_OUT = 0, 1


@dataclass(frozen=True)
class IoExit:
    """KVM_EXIT_IO: a port access the kernel hands to the VMM. `data` is count*size bytes."""

    direction: int
    size: int
    port: int
    count: int
    data_offset: int

    @property
    def is_out(self) -> bool:
        return self.direction == IO_OUT


@dataclass(frozen=True)
class MmioExit:
    """KVM_EXIT_MMIO: a load or store to guest-physical memory no memory slot backs."""

    phys_addr: int
    data: bytes
    length: int
    is_write: bool


@dataclass(frozen=True)
class FailEntryExit:
    hardware_entry_failure_reason: int
    cpu: int


@dataclass(frozen=True)
class InternalErrorExit:
    suberror: int
    data: tuple[int, ...] = field(default_factory=tuple)

    @property
    def description(self) -> str:
        return INTERNAL_SUBERRORS.get(self.suberror, f"suberror {self.suberror}")


@dataclass(frozen=True)
class SystemEventExit:
    type: int
    data: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class OtherExit:
    """Any other reason: the raw first 8 bytes of the union (hardware_exit_reason for UNKNOWN)."""

    raw: int


Decoded = IoExit | MmioExit | FailEntryExit | InternalErrorExit | SystemEventExit | OtherExit | None

_U = KVM_RUN_UNION_OFFSET


Buffer = bytes | bytearray | memoryview | mmap.mmap


def exit_reason(run: Buffer) -> int:
    return int(struct.unpack_from("<I", run, KVM_RUN_EXIT_REASON_OFFSET)[0])


def decode(run: Buffer) -> tuple[int, Decoded]:
    """Read the exit reason and its union member out of a `struct kvm_run` buffer."""
    code = exit_reason(run)
    if code == ExitReason.IO:
        direction, size, port, count, data_offset = struct.unpack_from("<BBHIQ", run, _U)
        return code, IoExit(direction, size, port, count, data_offset)
    if code == ExitReason.MMIO:
        phys_addr, data, length, is_write = struct.unpack_from("<Q8sIB", run, _U)
        return code, MmioExit(phys_addr, bytes(data), length, bool(is_write))
    if code == ExitReason.FAIL_ENTRY:
        reason, cpu = struct.unpack_from("<QI", run, _U)
        return code, FailEntryExit(reason, cpu)
    if code == ExitReason.INTERNAL_ERROR:
        suberror, ndata = struct.unpack_from("<II", run, _U)
        n = min(ndata, 16)
        data = struct.unpack_from(f"<{n}Q", run, _U + 8) if n else ()
        return code, InternalErrorExit(suberror, tuple(data))
    if code == ExitReason.SYSTEM_EVENT:
        type_, ndata = struct.unpack_from("<II", run, _U)
        n = min(ndata, 16)
        data = struct.unpack_from(f"<{n}Q", run, _U + 8) if n else ()
        return code, SystemEventExit(type_, tuple(data))
    if code in (ExitReason.HLT, ExitReason.SHUTDOWN, ExitReason.INTR):
        return code, None
    (raw,) = struct.unpack_from("<Q", run, _U)
    return code, OtherExit(raw)
