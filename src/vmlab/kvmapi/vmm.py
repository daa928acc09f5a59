"""The VMM loop: set up one vCPU, enter KVM_RUN, decode each exit, emulate the device, repeat.

Every exit that reaches this loop is counted by reason; the kernel's own counters (stats fd, debugfs)
are read before and after, so students can compare what the kernel handled alone with what it passed
up. Limits on exits and wall time stop a runaway guest; a SIGALRM interval timer makes KVM_RUN return
(EINTR) even when the guest never exits on its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vmlab.errors import BackendError
from vmlab.kvmapi import devices as dev
from vmlab.kvmapi import ioctl
from vmlab.kvmapi.exits import (
    ExitReason,
    FailEntryExit,
    InternalErrorExit,
    IoExit,
    MmioExit,
    decode,
    reason_name,
)
from vmlab.kvmapi.guest import Program
from vmlab.kvmapi.machine import DEFAULT_DEVICE, Kvm, Vcpu
from vmlab.kvmapi.modes import set_mode
from vmlab.kvmapi.stats import delta, mount_debugfs, read_debugfs, vcpu_stats
from vmlab.kvmapi.structs import KVM_RUN_UNION_OFFSET

WATCHDOG_INTERVAL_S = 0.05


@dataclass
class Limits:
    """A runaway guest is stopped by whichever limit it reaches first."""

    max_exits: int = 1_000_000
    wall_s: float = 10.0


@dataclass
class GuestRun:
    """What one run of a guest program showed, with the source of every figure."""

    program: str
    output: bytes = b""
    exits: Counter[str] = field(default_factory=Counter)
    io_ports: Counter[int] = field(default_factory=Counter)
    hypercalls: int = 0
    mmio_writes: int = 0
    mmio_reads: int = 0
    stop: str = ""
    exit_value: int | None = None
    loop_ns: int = 0
    signals: int = 0
    kernel_stats: dict[str, int] | None = None
    kernel_stats_source: str = ""
    debugfs: dict[str, int] | None = None
    debugfs_source: str = ""
    regs: dict[str, int] = field(default_factory=dict)

    @property
    def total_exits(self) -> int:
        return sum(self.exits.values())

    @property
    def ns_per_exit(self) -> float:
        return self.loop_ns / self.total_exits if self.total_exits else float("nan")

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def as_dict(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "output": self.text,
            "stop": self.stop,
            "exit_value": self.exit_value,
            "exits": dict(self.exits),
            "total_exits": self.total_exits,
            "io_ports": {f"{p:#x}": n for p, n in sorted(self.io_ports.items())},
            "hypercalls": self.hypercalls,
            "mmio_writes": self.mmio_writes,
            "mmio_reads": self.mmio_reads,
            "loop_ns": self.loop_ns,
            "ns_per_exit": self.ns_per_exit if self.total_exits else None,
            "signals": self.signals,
            "kernel_stats": self.kernel_stats,
            "kernel_stats_source": self.kernel_stats_source,
            "debugfs": self.debugfs,
            "debugfs_source": self.debugfs_source,
            "regs": {k: f"{v:#x}" for k, v in self.regs.items()},
        }


class GuestFault(BackendError):
    """The guest stopped abnormally (triple fault, failed entry, emulation failure); `run` holds the
    exits seen until then."""

    def __init__(self, message: str, run: GuestRun, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.run = run


class GuestLimit(GuestFault):
    """The guest reached the exit or wall-time limit before it halted."""


def run_program(
    program: Program,
    *,
    limits: Limits | None = None,
    device: str = DEFAULT_DEVICE,
    debugfs: bool = True,
    mount: bool = False,
    preload: Mapping[int, bytes] | None = None,
) -> GuestRun:
    """Run `program` once on a fresh VM and vCPU; everything is released on return or exception.

    `preload` puts data at guest-physical addresses before the first instruction (a lab's input).
    """
    limits = limits or Limits()
    result = GuestRun(program=program.name)
    if mount:
        why = mount_debugfs()
        if why is not None:
            result.debugfs_source = f"not available: {why}"
    with Kvm(device) as kvm, kvm.create_vm() as vm:
        vm.set_tss_addr()
        mem = vm.add_memory(dev.RAM_BASE, dev.RAM_SIZE)
        end = program.org + len(program.code)
        if program.org < dev.RAM_BASE or end > dev.RAM_SIZE:
            raise BackendError(
                f"program {program.name!r} ({len(program.code)} bytes at {program.org:#x}) "
                f"does not fit in guest RAM (0x0-{dev.RAM_SIZE:#x})"
            )
        mem[program.org : end] = program.code
        for addr, data in (preload or {}).items():
            if addr < dev.RAM_BASE or addr + len(data) > dev.RAM_SIZE:
                raise BackendError(f"preload of {len(data)} bytes at {addr:#x} does not fit in guest RAM")
            mem[addr : addr + len(data)] = data
        with vm.create_vcpu() as vcpu, vcpu_stats(vcpu) as stats:
            set_mode(vcpu, program, mem)
            before = stats.snapshot() if stats else None
            try:
                _loop(vcpu, mem, result, limits)
            finally:
                if stats and before is not None:
                    result.kernel_stats = delta(before, stats.snapshot(), stats.layout.descriptors)
                    result.kernel_stats_source = f"KVM_GET_STATS_FD ({stats.layout.id})"
                elif not result.kernel_stats_source:
                    result.kernel_stats_source = "not available: KVM_GET_STATS_FD failed on this kernel"
                if debugfs:
                    values, source = read_debugfs(vm.fd)
                    result.debugfs = values
                    if values is not None or not result.debugfs_source:
                        result.debugfs_source = source if values is not None else f"not available: {source}"
                regs = vcpu.get_regs()
                result.regs = {n: getattr(regs, n) for n in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rip")}
    return result


@contextlib.contextmanager
def _watchdog() -> Iterator[bool]:
    """An interval timer whose SIGALRM makes a busy KVM_RUN return EINTR; only the main thread may set
    signal handlers, elsewhere the wall limit is checked at exits only (yields False)."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    old_handler = signal.signal(signal.SIGALRM, _ignore)
    old_timer = signal.setitimer(signal.ITIMER_REAL, WATCHDOG_INTERVAL_S, WATCHDOG_INTERVAL_S)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, *old_timer)
        signal.signal(signal.SIGALRM, old_handler)


def _ignore(signum: int, frame: object) -> None:
    """SIGALRM only has to interrupt KVM_RUN; the loop then looks at its deadline."""


_REASON = struct.Struct("<I").unpack_from
_IO = struct.Struct("<BBHIQ").unpack_from
_IO_OUT = 1
_CHECK_MASK = 255  # look at the clock every 256 exits (the watchdog signal covers exit-less guests)
_PORT_DIR_MASK = 0xFFFF00FF  # the first u32 of kvm_run.io: direction, size (masked out), port


def _loop(vcpu: Vcpu, mem: Any, result: GuestRun, limits: Limits) -> None:
    """The KVM_RUN loop, kept tight: `kvm_run` is read in place (struct.unpack_from on the mapping, no
    copies); an OUT to the POST port (the timed programs' exit) is recognised from one u32 of the
    io union and only counted, in local integers; other exits are counted by reason code in a dict
    and named once at the end (`settle`, also before any error message that quotes the counts)."""
    run = vcpu.run_map
    fd = vcpu.fd
    ioctl_ = fcntl.ioctl
    kvm_run = ioctl.KVM_RUN
    reason_of, io_of = _REASON, _IO
    exit_io, exit_hlt, union = int(ExitReason.IO), int(ExitReason.HLT), KVM_RUN_UNION_OFFSET
    post = dev.POST_PORT
    post_out = _IO_OUT | (post << 16)
    mask, check = _PORT_DIR_MASK, _CHECK_MASK
    counts: dict[int, int] = {}
    ports = result.io_ports
    mmio_regs: dict[int, int] = {}
    total = io_n = post_n = 0
    max_exits = limits.max_exits

    def settle() -> None:
        nonlocal io_n, post_n
        if io_n:
            counts[exit_io] = counts.get(exit_io, 0) + io_n
        if post_n:
            ports[post] += post_n
        io_n = post_n = 0
        _flush(result, counts)

    with _watchdog():
        start = time.perf_counter_ns()
        deadline = start + int(limits.wall_s * 1e9)
        try:
            while True:
                try:
                    ioctl_(fd, kvm_run, 0)
                except InterruptedError:
                    result.signals += 1
                    if time.perf_counter_ns() > deadline:
                        settle()
                        raise GuestLimit(
                            f"guest {result.program!r} still running after {limits.wall_s:g} s "
                            f"({total} exits)",
                            result,
                            hint="a guest loop without hlt? raise --timeout if it is just slow",
                        ) from None
                    continue
                except OSError as e:
                    settle()
                    raise BackendError(
                        f"KVM_RUN failed: {os.strerror(e.errno or 0)} (errno {e.errno})"
                    ) from None
                (code,) = reason_of(run, 8)
                total += 1
                if code == exit_io:
                    io_n += 1
                    (key,) = reason_of(run, union)
                    if key & mask == post_out:
                        post_n += 1
                    else:
                        direction, size, port, count, offset = io_of(run, union)
                        if _io(IoExit(direction, size, port, count, offset), run, mem, result):
                            return
                elif code == exit_hlt:
                    counts[code] = counts.get(code, 0) + 1
                    result.stop = "HLT"
                    return
                else:
                    counts[code] = counts.get(code, 0) + 1
                    reason, info = decode(run)
                    if isinstance(info, MmioExit):
                        _mmio(info, run, result, mmio_regs)
                    else:
                        name = reason_name(reason)
                        result.stop = name
                        settle()
                        raise GuestFault(
                            _fault_message(result, name, info, vcpu), result, hint=_fault_hint(name)
                        )
                if total >= max_exits:
                    settle()
                    raise GuestLimit(
                        f"guest {result.program!r} reached the limit of {max_exits} exits without halting",
                        result,
                        hint="raise --max-exits, or end the program with hlt",
                    )
                if not total & check and time.perf_counter_ns() > deadline:
                    settle()
                    raise GuestLimit(
                        f"guest {result.program!r} still running after {limits.wall_s:g} s ({total} exits)",
                        result,
                        hint="raise --timeout",
                    )
        finally:
            result.loop_ns = time.perf_counter_ns() - start
            settle()


def _flush(result: GuestRun, counts: dict[int, int]) -> None:
    """Move the loop's counts (by reason code) into result.exits (by name); idempotent."""
    for code, n in counts.items():
        result.exits[reason_name(code)] += n
    counts.clear()


def _io(info: IoExit, run: Any, mem: Any, result: GuestRun) -> bool:
    """Emulate one port access; True when the guest asked to stop (debug exit)."""
    result.io_ports[info.port] += 1
    nbytes = info.size * info.count
    lo, hi = info.data_offset, info.data_offset + nbytes
    if info.is_out:
        data = bytes(run[lo:hi])
        if info.port == dev.SERIAL_PORT:
            result.output += data if info.size == 1 else data[:: info.size]
        elif info.port == dev.DEBUG_EXIT_PORT:
            result.stop = "debug-exit"
            result.exit_value = int.from_bytes(data[: info.size], "little")
            return True
        elif info.port == dev.HYPERCALL_PORT:
            for i in range(info.count):
                addr = int.from_bytes(data[i * info.size : (i + 1) * info.size], "little")
                _hypercall(addr, mem, result)
    else:
        value = 0x60 if info.port == dev.SERIAL_LSR else 0xFF
        run[lo:hi] = bytes([value]) * nbytes
    return False


def _hypercall(addr: int, mem: Any, result: GuestRun) -> None:
    """The paravirtual path: the guest hands over a buffer address, the VMM reads the whole buffer."""
    result.hypercalls += 1
    if addr + 4 > dev.RAM_SIZE:
        raise GuestFault(f"hypercall block at {addr:#x} is outside guest RAM (0x0-{dev.RAM_SIZE:#x})", result)
    nr, length = struct.unpack_from("<HH", mem, addr)
    if addr + 4 + length > dev.RAM_SIZE:
        raise GuestFault(f"hypercall buffer {addr + 4:#x}+{length} runs past guest RAM", result)
    if nr == dev.HC_CONSOLE_WRITE:
        result.output += bytes(mem[addr + 4 : addr + 4 + length])
    else:
        raise GuestFault(
            f"unknown hypercall number {nr} (block at {addr:#x})",
            result,
            hint=f"use nr {dev.HC_CONSOLE_WRITE} (console write)",
        )


def _mmio(info: MmioExit, run: Any, result: GuestRun, regs: dict[int, int]) -> None:
    offset = info.phys_addr - dev.MMIO_BASE
    if info.is_write:
        result.mmio_writes += 1
        value = int.from_bytes(info.data[: info.length], "little")
        if offset == dev.MMIO_CONSOLE and 0 <= offset < dev.MMIO_SIZE:
            result.output += info.data[: info.length]
        regs[offset] = value
    else:
        result.mmio_reads += 1
        value = regs.get(offset, 0) if 0 <= offset < dev.MMIO_SIZE else (1 << (8 * info.length)) - 1
        data_at = KVM_RUN_UNION_OFFSET + 8
        run[data_at : data_at + info.length] = value.to_bytes(8, "little")[: info.length]


def _fault_message(result: GuestRun, name: str, info: object, vcpu: Vcpu) -> str:
    try:
        rip = f" at rip={vcpu.get_regs().rip:#x}"
    except BackendError:
        rip = ""
    where = f"guest {result.program!r} stopped with {name}{rip} after {result.total_exits - 1} exits"
    if name == "SHUTDOWN":
        return f"{where}: triple fault (an exception the guest could not handle, e.g. no IDT)"
    if isinstance(info, InternalErrorExit):
        return f"{where}: KVM internal error {info.suberror}, {info.description}"
    if isinstance(info, FailEntryExit):
        return f"{where}: VM entry failed, hardware reason {info.hardware_entry_failure_reason:#x}"
    return f"{where}: this VMM does not handle exit reason {name}"


def _fault_hint(name: str) -> str:
    return {
        "SHUTDOWN": "check the program: it faulted; real-mode guests need an IVT, protected-mode ones an IDT",
        "INTERNAL_ERROR": "the instruction at rip cannot be emulated here; simplify the program",
        "FAIL_ENTRY": "the register state is invalid for VM entry; check bits 16/32 and the segments",
    }.get(name, "end the program with hlt")
