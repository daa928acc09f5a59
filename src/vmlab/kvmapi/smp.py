"""Two vCPUs: one VM, one thread per vCPU, guests that talk through shared memory and a doorbell.

Three ways for a waiting vCPU to wait for the other one, each a built-in program:

- `smp-spin`: it spins on a word in shared memory (with `pause`); nothing exits, the host thread burns
  CPU for as long as it waits.
- `smp-doorbell`: it halts; without an in-kernel irqchip KVM returns HLT to user space, and this VMM
  parks the vCPU's thread until the other vCPU rings the doorbell port (an OUT of the target's index to
  0x520, the IPI stand-in): one IO exit on the ringing side, one HLT exit on the waiting side.
- `smp-ipi`: the in-kernel irqchip (KVM_CREATE_IRQCHIP): the guest sends a real IPI through its local
  APIC's ICR and halts in the kernel, where KVM polls (halt_poll_ns) and then sleeps; the VMM sees
  nothing until the final stop. The kernel's `halt_*` counters show how each wait ended.

Every vCPU thread is stopped and joined before any fd or mapping is released: on the guest's stop, a
fault in either vCPU, the wall-time limit or Ctrl-C (the main thread sets `immediate_exit` in each
`kvm_run` and sends the thread SIGUSR1, so a KVM_RUN in progress returns EINTR).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from vmlab.errors import BackendError
from vmlab.kvmapi import devices as dev
from vmlab.kvmapi.exits import ExitReason, IoExit, decode, reason_name
from vmlab.kvmapi.machine import DEFAULT_DEVICE, Kvm, Vcpu
from vmlab.kvmapi.modes import flat_segment
from vmlab.kvmapi.smp_guests import DOORBELL_PORT, SmpProgram
from vmlab.kvmapi.stats import StatsFd, delta, vcpu_stats
from vmlab.kvmapi.structs import Sregs
from vmlab.kvmapi.vmm import Limits

JOIN_GRACE_S = 5.0


@dataclass
class VcpuRun:
    """One vCPU's view: its exits, its thread's CPU time against the wall, the kernel's counters."""

    index: int
    exits: Counter[str] = field(default_factory=Counter)
    io_ports: Counter[int] = field(default_factory=Counter)
    doorbells_sent: int = 0
    wakeups: int = 0
    signals: int = 0
    stop: str = ""
    exit_value: int | None = None
    cpu_ns: int = 0
    wall_ns: int = 0
    output: bytes = b""
    kernel_stats: dict[str, int] | None = None
    kernel_stats_source: str = ""
    error: BaseException | None = None

    @property
    def total_exits(self) -> int:
        return sum(self.exits.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "vcpu": self.index,
            "exits": dict(self.exits),
            "total_exits": self.total_exits,
            "io_ports": {f"{p:#x}": n for p, n in sorted(self.io_ports.items())},
            "doorbells_sent": self.doorbells_sent,
            "wakeups": self.wakeups,
            "stop": self.stop,
            "exit_value": self.exit_value,
            "cpu_ns": self.cpu_ns,
            "wall_ns": self.wall_ns,
            "kernel_stats": self.kernel_stats,
            "kernel_stats_source": self.kernel_stats_source,
        }


@dataclass
class SmpRun:
    program: str
    vcpus: list[VcpuRun]
    wall_ns: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"program": self.program, "wall_ns": self.wall_ns, "vcpus": [v.as_dict() for v in self.vcpus]}


class SmpFault(BackendError):
    """A vCPU stopped abnormally (fault, limit); `run` holds what every vCPU did until then."""

    def __init__(self, message: str, run: SmpRun, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.run = run


class SmpLimit(SmpFault):
    """The guests reached the wall-time or exit limit."""


# ---- the VMM --------------------------------------------------------------------------------------


def _set_mode(vcpu: Vcpu, program: SmpProgram, index: int) -> None:
    """As the one-vCPU VMM, with a stack of its own per vCPU (64 KiB apart)."""
    sregs: Sregs = vcpu.get_sregs()
    stack_seg = dev.STACK_SEGMENT - 0x1000 * index
    if program.bits == 32:
        sregs.cr0 |= 1
        flat_segment(sregs.cs, True, 0x08)
        for seg in (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
            flat_segment(seg, False, 0x10)
        sp = stack_seg * 16 + dev.STACK_POINTER
    else:
        for seg in (sregs.cs, sregs.ds, sregs.es, sregs.fs, sregs.gs):
            seg.base, seg.selector = 0, 0
        sregs.ss.base, sregs.ss.selector = stack_seg * 16, stack_seg
        sp = dev.STACK_POINTER
    vcpu.set_sregs(sregs)
    regs = vcpu.get_regs()
    regs.rip, regs.rflags, regs.rsp = program.entries[index], 0x2, sp
    vcpu.set_regs(regs)


@dataclass
class _Shared:
    vcpus: list[Vcpu]
    runs: list[VcpuRun]
    doorbells: list[threading.Semaphore]
    stop: threading.Event
    limits: Limits
    program: str
    threads: list[threading.Thread] = field(default_factory=list)


def _kick(shared: _Shared) -> None:
    """Make every vCPU leave KVM_RUN: immediate_exit for one about to enter, SIGUSR1 for one inside."""
    shared.stop.set()
    for vcpu in shared.vcpus:
        with contextlib.suppress(ValueError, OSError):
            vcpu.set_immediate_exit(True)
    for t in shared.threads:
        if t.is_alive() and t.ident is not None:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pthread_kill(t.ident, signal.SIGUSR1)


def _vcpu_thread(shared: _Shared, i: int) -> None:
    vcpu, res = shared.vcpus[i], shared.runs[i]
    run = vcpu.run_map
    cpu0, wall0 = time.thread_time_ns(), time.perf_counter_ns()
    try:
        while not shared.stop.is_set():
            code = vcpu.run()
            if code == ExitReason.INTR:
                res.signals += 1
                continue
            reason, info = decode(run)
            name = reason_name(reason)
            res.exits[name] += 1
            if isinstance(info, IoExit):
                if _io(shared, i, info, run):
                    return
            elif reason == ExitReason.HLT:
                # Halt to user space: park this thread until the other vCPU rings (the VMM's own
                # "halt polling" is none at all: it blocks on the semaphore).
                while not shared.doorbells[i].acquire(timeout=0.05):
                    if shared.stop.is_set():
                        return
                res.wakeups += 1
            else:
                res.stop = name
                raise BackendError(
                    f"vCPU {i} of {shared.program!r} stopped with {name} after {res.total_exits - 1} exits"
                )
            if res.total_exits >= shared.limits.max_exits:
                res.stop = "max-exits"
                raise BackendError(f"vCPU {i} of {shared.program!r} reached {shared.limits.max_exits} exits")
    except BaseException as e:
        res.error = e
        _kick(shared)
    finally:
        res.cpu_ns = time.thread_time_ns() - cpu0
        res.wall_ns = time.perf_counter_ns() - wall0


def _io(shared: _Shared, i: int, info: IoExit, run: Any) -> bool:
    res = shared.runs[i]
    res.io_ports[info.port] += 1
    lo, hi = info.data_offset, info.data_offset + info.size * info.count
    if not info.is_out:
        run[lo:hi] = b"\xff" * (hi - lo)
        return False
    value = int.from_bytes(run[lo : lo + info.size], "little")
    if info.port == DOORBELL_PORT:
        if not 0 <= value < len(shared.doorbells) or value == i:
            raise BackendError(f"vCPU {i} rang the doorbell of vCPU {value}: no such other vCPU")
        res.doorbells_sent += 1
        shared.doorbells[value].release()
    elif info.port == dev.DEBUG_EXIT_PORT:
        res.stop, res.exit_value = "debug-exit", value
        return True
    elif info.port == dev.SERIAL_PORT:
        res.output += bytes(run[lo:hi])
    return False


@contextlib.contextmanager
def _usr1() -> Iterator[None]:
    """A no-op SIGUSR1 handler (installed by the main thread) so the kick interrupts KVM_RUN."""
    if threading.current_thread() is not threading.main_thread():
        raise BackendError(
            "two-vCPU runs must be started from the main thread (they install a signal handler)"
        )
    old = signal.signal(signal.SIGUSR1, _ignore)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, old)


def _ignore(signum: int, frame: object) -> None:
    """SIGUSR1 only has to make KVM_RUN return EINTR."""


def run_smp(program: SmpProgram, *, limits: Limits | None = None, device: str = DEFAULT_DEVICE) -> SmpRun:
    """Run a two-vCPU program on a fresh VM; every thread is joined and every fd closed on return."""
    limits = limits or Limits()
    n = len(program.entries)
    result = SmpRun(program.name, [VcpuRun(i) for i in range(n)])
    with Kvm(device) as kvm, kvm.create_vm() as vm, contextlib.ExitStack() as stack:
        if program.irqchip:
            vm.create_irqchip()
        vm.set_tss_addr()
        mem = vm.add_memory(dev.RAM_BASE, dev.RAM_SIZE)
        mem[program.org : program.org + len(program.code)] = program.code
        vcpus = [stack.enter_context(vm.create_vcpu(i)) for i in range(n)]
        stats: list[StatsFd | None] = [stack.enter_context(vcpu_stats(v)) for v in vcpus]
        for i, v in enumerate(vcpus):
            _set_mode(v, program, i)
            if program.irqchip:
                v.set_runnable()
        shared = _Shared(
            vcpus,
            result.vcpus,
            [threading.Semaphore(0) for _ in range(n)],
            threading.Event(),
            limits,
            program.name,
        )
        before = [s.snapshot() if s else None for s in stats]
        with _usr1():
            start = time.perf_counter_ns()
            try:
                _run_threads(shared, start + int(limits.wall_s * 1e9))
            finally:
                _stop_and_join(shared)
                result.wall_ns = time.perf_counter_ns() - start
                for r, s, b in zip(result.vcpus, stats, before, strict=True):
                    if s is not None and b is not None:
                        r.kernel_stats = delta(b, s.snapshot(), s.layout.descriptors)
                        r.kernel_stats_source = f"KVM_GET_STATS_FD ({s.layout.id})"
                    else:
                        r.kernel_stats_source = "not available: KVM_GET_STATS_FD failed on this kernel"
    failed = [r for r in result.vcpus if r.error is not None]
    if failed:
        first = failed[0]
        err = first.error
        hint = err.hint if isinstance(err, BackendError) else None
        raise SmpFault(
            str(err) if isinstance(err, BackendError) else f"vCPU {first.index}: {err!r}", result, hint=hint
        )
    return result


def _run_threads(shared: _Shared, deadline: int) -> None:
    for i in range(len(shared.vcpus)):
        t = threading.Thread(target=_vcpu_thread, args=(shared, i), name=f"vmlab-vcpu{i}", daemon=True)
        shared.threads.append(t)
        t.start()
    # Poll with sleep rather than join(timeout): a Ctrl-C inside Thread.join can leave a finished
    # thread listed as running (CPython 3.11); a sleep interrupted by it leaves nothing behind.
    while any(t.is_alive() for t in shared.threads):
        time.sleep(0.02)
        if time.perf_counter_ns() > deadline and any(t.is_alive() for t in shared.threads):
            _kick(shared)
            _stop_and_join(shared)
            for r in shared.runs:
                if not r.stop:
                    r.stop = "timeout"
            raise SmpLimit(
                f"{shared.program!r} still running after {shared.limits.wall_s:g} s "
                f"(exits per vCPU: {', '.join(str(r.total_exits) for r in shared.runs)})",
                SmpRun(shared.program, shared.runs),
                hint="raise --timeout, or check that every vCPU ends with an OUT to port 0xf4",
            )


def _stop_and_join(shared: _Shared) -> None:
    """Stop every vCPU thread and wait for it; only then may the caller close fds and unmap kvm_run."""
    if any(t.is_alive() for t in shared.threads):
        _kick(shared)
    give_up = time.monotonic() + JOIN_GRACE_S
    while any(t.is_alive() for t in shared.threads):
        time.sleep(0.01)
        if time.monotonic() > give_up:
            raise BackendError("a vCPU thread did not leave KVM_RUN within 5 s; its fds are left open")
        _kick(shared)
    for t in shared.threads:
        t.join()  # already finished: returns at once
