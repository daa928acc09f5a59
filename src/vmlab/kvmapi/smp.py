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

from vmlab.errors import BackendError, UsageError
from vmlab.kvmapi import devices as dev
from vmlab.kvmapi.asm import assemble
from vmlab.kvmapi.exits import ExitReason, IoExit, decode, reason_name
from vmlab.kvmapi.machine import DEFAULT_DEVICE, Kvm, Vcpu
from vmlab.kvmapi.stats import StatsFd, delta
from vmlab.kvmapi.structs import Sregs
from vmlab.kvmapi.vmm import Limits, _flat, _stats

DOORBELL_PORT = 0x520
FLAG_ADDR = 0x7000  # dword: the round vCPU 0 has published
ACK_ADDR = 0x7004  # dword: the round vCPU 1 has seen
READY_ADDR = 0x7008  # dword: vCPU 1's local APIC is on (smp-ipi)
IPI_VECTOR = 0x40
APIC_BASE = 0xFEE00000
DEFAULT_ROUNDS = 300
WORK = 200  # iterations of vCPU 0's busy loop before each round: the time vCPU 1 spends waiting
MAX_ROUNDS = 100_000
JOIN_GRACE_S = 5.0


@dataclass(frozen=True)
class SmpProgram:
    """A guest with one entry point per vCPU (labels cpu0, cpu1 of one assembled source)."""

    name: str
    code: bytes
    entries: tuple[int, ...]
    description: str
    bits: int = 16
    org: int = dev.LOAD_ADDR
    source: str | None = None
    irqchip: bool = False
    rounds: int = 0
    expect: tuple[dict[str, int], ...] = ()


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


# ---- the programs ---------------------------------------------------------------------------------


def _smp(
    name: str,
    description: str,
    source: str,
    rounds: int,
    expect: tuple[dict[str, int], ...],
    *,
    irqchip: bool = False,
) -> SmpProgram:
    a = assemble(source, name=name)
    entries = (a.labels["cpu0"], a.labels["cpu1"])
    return SmpProgram(name, a.code, entries, description, a.bits, a.org, source, irqchip, rounds, expect)


def _rounds(n: int) -> int:
    if not 1 <= n <= MAX_ROUNDS:
        raise UsageError(f"{n} rounds is out of range", hint=f"use 1..{MAX_ROUNDS}")
    return n


def smp_spin(n: int = DEFAULT_ROUNDS) -> SmpProgram:
    src = f"""\
; Two vCPUs, {n} rounds of ping-pong through shared memory; each side waits by spinning. vCPU 0
; works for {WORK} loop iterations before each round, so vCPU 1 mostly waits: what does waiting cost?
; vCPU 0 publishes round i at {FLAG_ADDR:#x} and spins until vCPU 1 echoes it at {ACK_ADDR:#x}.
cpu0:
    mov ebx, 1
next0:
    mov ecx, {WORK}
work0:
    dec ecx
    jnz work0             ; vCPU 0 works (no exits) while vCPU 1 waits
    mov [{FLAG_ADDR:#x}], ebx     ; publish round i (a plain store to shared RAM: no exit)
wait0:
    pause                 ; the spin-wait hint: VT-x/AMD-V may exit after many (pause-loop exiting)
    cmp [{ACK_ADDR:#x}], ebx
    jne wait0             ; spin: the host thread burns CPU all the while
    inc ebx
    cmp ebx, {n}
    jbe next0
    mov al, 0
    out {dev.DEBUG_EXIT_PORT:#x}, al      ; the only exit of vCPU 0: stop, value 0
cpu1:
    mov ebx, 1
wait1:
    pause
    cmp [{FLAG_ADDR:#x}], ebx
    jne wait1             ; spin until round i is published
    mov [{ACK_ADDR:#x}], ebx      ; echo it
    inc ebx
    cmp ebx, {n}
    jbe wait1
    mov al, 0
    out {dev.DEBUG_EXIT_PORT:#x}, al      ; the only exit of vCPU 1
"""
    # Hand count: neither loop contains an exiting instruction, so each vCPU leaves only through its
    # final OUT to the debug-exit port: 1 IO exit each, no HLT.
    return _smp(
        "smp-spin",
        f"two vCPUs ping-pong {n} rounds through shared memory, spinning (1 IO each)",
        src,
        n,
        ({"IO": 1}, {"IO": 1}),
    )


def smp_doorbell(n: int = DEFAULT_ROUNDS) -> SmpProgram:
    src = f"""\
; The same {n} rounds, but each side halts while it waits and is woken by the other's doorbell:
; OUT of the target vCPU's index to port {DOORBELL_PORT:#x} (the VMM wakes that vCPU's thread).
cpu0:
    mov ebx, 1
    mov dx, {DOORBELL_PORT:#x}
next0:
    mov ecx, {WORK}
work0:
    dec ecx
    jnz work0             ; vCPU 0 works (no exits) while vCPU 1 waits
    mov [{FLAG_ADDR:#x}], ebx     ; publish round i
    mov al, 1
    out dx, al            ; ring vCPU 1: KVM_EXIT_IO
    hlt                   ; wait: KVM_EXIT_HLT, the VMM parks this thread until vCPU 1 rings
    cmp [{ACK_ADDR:#x}], ebx
    jne bad
    inc ebx
    cmp ebx, {n}
    jbe next0
    mov al, 0
    out {dev.DEBUG_EXIT_PORT:#x}, al
cpu1:
    mov ebx, 1
    mov dx, {DOORBELL_PORT:#x}
wait1:
    hlt                   ; wait for round i: KVM_EXIT_HLT
    cmp [{FLAG_ADDR:#x}], ebx
    jne bad               ; woken without round i published: the doorbell lied
    mov [{ACK_ADDR:#x}], ebx
    mov al, 0
    out dx, al            ; ring vCPU 0
    inc ebx
    cmp ebx, {n}
    jbe wait1
    mov al, 0
    out {dev.DEBUG_EXIT_PORT:#x}, al
bad:
    mov al, 0xee
    out {dev.DEBUG_EXIT_PORT:#x}, al      ; exit value 0xee: shared memory and doorbell disagree
"""
    # Hand count, per vCPU over n rounds: vCPU 0 rings once (IO) and halts once (HLT) a round, then
    # stops through the debug port: n + 1 IO, n HLT. vCPU 1 halts once and rings once a round, then
    # stops: n HLT, n + 1 IO. A doorbell rung before the other side halts is kept (a semaphore), so
    # the counts do not depend on timing.
    return _smp(
        "smp-doorbell",
        f"{n} rounds, each side halts and is woken by a doorbell port (n+1 IO, n HLT each)",
        src,
        n,
        ({"IO": n + 1, "HLT": n}, {"IO": n + 1, "HLT": n}),
    )


def smp_ipi(n: int = DEFAULT_ROUNDS) -> SmpProgram:
    apic = APIC_BASE
    src = f"""\
bits 32
; irqchip: the VMM creates the in-kernel PIC/IOAPIC/local APICs. {n} rounds of real IPIs: each side
; halts in the kernel (KVM polls, then sleeps) and the other wakes it through its local APIC's ICR.
cpu0:
    lgdt [gdtr]           ; interrupt delivery loads CS from a GDT and the gate from the IDT
    lidt [idtr]
    mov dword [{apic + 0xF0:#x}], 0x1ff   ; local APIC on (SVR bit 8), spurious vector 0xff
wait_ready:
    pause
    cmp dword [{READY_ADDR:#x}], 1
    jne wait_ready        ; until vCPU 1's APIC can take an IPI (start-up only)
    mov ebx, 1
next0:
    mov ecx, {WORK}
work0:
    dec ecx
    jnz work0             ; vCPU 0 works (no exits) while vCPU 1 waits
    mov [{FLAG_ADDR:#x}], ebx
    mov dword [{apic + 0x310:#x}], 0x01000000   ; ICR high: destination APIC id 1
    mov dword [{apic + 0x300:#x}], {IPI_VECTOR:#x}  ; ICR low: fixed IPI, vector {IPI_VECTOR:#x} (kernel only)
wait0:
    sti                   ; sti;hlt is atomic: an IPI pending from before wakes the hlt at once
    hlt                   ; halt in the kernel until vCPU 1's IPI
    cli
    cmp [{ACK_ADDR:#x}], ebx
    jne wait0
    inc ebx
    cmp ebx, {n}
    jbe next0
    mov al, 0
    out {dev.DEBUG_EXIT_PORT:#x}, al      ; the only exit of vCPU 0
cpu1:
    lgdt [gdtr]
    lidt [idtr]
    mov dword [{apic + 0xF0:#x}], 0x1ff
    mov dword [{READY_ADDR:#x}], 1
    mov ebx, 1
wait1:
    sti
    hlt
    cli
    cmp [{FLAG_ADDR:#x}], ebx
    jne wait1
    mov [{ACK_ADDR:#x}], ebx
    mov dword [{apic + 0x310:#x}], 0          ; destination APIC id 0
    mov dword [{apic + 0x300:#x}], {IPI_VECTOR:#x}
    inc ebx
    cmp ebx, {n}
    jbe wait1
    mov al, 0
    out {dev.DEBUG_EXIT_PORT:#x}, al      ; the only exit of vCPU 1
handler:                  ; taken only during sti;hlt, with IF=0 from the interrupt gate
    mov dword [{apic + 0xB0:#x}], 0       ; end of interrupt
    pop eax               ; the eip after hlt; cs and eflags are dropped (IF stays 0, as after cli):
    add esp, 8            ; no iret, because KVM's instruction emulator (which runs this code on a
    push eax              ; host without VT-x/AMD-V) cannot emulate a protected-mode IRET
    ret
gdtr:
    dw 23
    dd gdt
idtr:
    dw {IPI_VECTOR * 8 + 7}
    dd idt
gdt:
    dd 0, 0
    dd 0x0000ffff, 0x00cf9a00     ; 0x08: flat 32-bit code
    dd 0x0000ffff, 0x00cf9200     ; 0x10: flat data
idt:
    times {IPI_VECTOR} dd 0, 0
    dw handler & 0xffff, 0x08     ; vector {IPI_VECTOR:#x}: 32-bit interrupt gate to handler
    dw 0x8e00, handler >> 16
"""
    # Hand count: the IPIs, halts, APIC writes and EOIs all stay in the kernel (in-kernel LAPIC), so
    # each vCPU reaches user space once, at its final OUT to the debug port: 1 IO each.
    return _smp(
        "smp-ipi",
        f"{n} rounds of real IPIs, halting in the kernel (in-kernel irqchip; 1 IO each)",
        src,
        n,
        ({"IO": 1}, {"IO": 1}),
        irqchip=True,
    )


SMP_BUILTINS = {"smp-spin": smp_spin, "smp-doorbell": smp_doorbell, "smp-ipi": smp_ipi}


def smp_builtin(name: str, n: int | None = None) -> SmpProgram:
    if name not in SMP_BUILTINS:
        raise UsageError(f"no two-vCPU program {name!r} (known: {', '.join(SMP_BUILTINS)})")
    return SMP_BUILTINS[name](_rounds(n if n is not None else DEFAULT_ROUNDS))


# ---- the VMM --------------------------------------------------------------------------------------


def _set_mode(vcpu: Vcpu, program: SmpProgram, index: int) -> None:
    """As the one-vCPU VMM, with a stack of its own per vCPU (64 KiB apart)."""
    sregs: Sregs = vcpu.get_sregs()
    stack_seg = dev.STACK_SEGMENT - 0x1000 * index
    if program.bits == 32:
        sregs.cr0 |= 1
        _flat(sregs.cs, True, 0x08)
        for seg in (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
            _flat(seg, False, 0x10)
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
        stats: list[StatsFd | None] = [stack.enter_context(_stats(v)) for v in vcpus]
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
