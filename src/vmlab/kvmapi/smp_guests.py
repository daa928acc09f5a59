"""The two-vCPU guests of vmlab.kvmapi.smp: one assembled source per program, an entry per vCPU.

Three ways for a waiting vCPU to wait for the other one (smp.py's docstring says what each costs):
`smp-spin` spins on a word in shared memory, `smp-doorbell` halts until the other vCPU writes the
doorbell port, `smp-ipi` halts in the kernel until a real IPI from the other vCPU's local APIC.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlab.errors import UsageError
from vmlab.kvmapi import devices as dev
from vmlab.kvmapi.asm import assemble

DOORBELL_PORT = 0x520
FLAG_ADDR = 0x7000  # dword: the round vCPU 0 has published
ACK_ADDR = 0x7004  # dword: the round vCPU 1 has seen
READY_ADDR = 0x7008  # dword: vCPU 1's local APIC is on (smp-ipi)
IPI_VECTOR = 0x40
APIC_BASE = 0xFEE00000
DEFAULT_ROUNDS = 300
WORK = 200  # iterations of vCPU 0's busy loop before each round: the time vCPU 1 spends waiting
MAX_ROUNDS = 100_000


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


# ---- the programs ---------------------------------------------------------------------------------


def assemble_smp(
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
    return assemble_smp(
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
    return assemble_smp(
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
    return assemble_smp(
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
