"""Built-in guest programs (commented assembler); a student's own is loaded by vmlab.kvmapi.guest.

Each program is a lesson about where exits come from; `expect` records the exits the VMM should see
(the lab's checks and the tests use the same numbers, written out there independently).
"""

from __future__ import annotations

from collections.abc import Callable

from vmlab.errors import UsageError
from vmlab.kvmapi import devices as dev
from vmlab.kvmapi.guest import DEFAULT_N, MAX_N, Program, assemble_program
from vmlab.kvmapi.paging_guests import cr3_writes, invlpgs, pages, pages_n, ptwrite

MESSAGE_LEN = 1024


def message(length: int = MESSAGE_LEN) -> str:
    """A deterministic text of `length` bytes: 64-byte lines, so output equality is easy to read."""
    lines = [
        f"line {i:03d}: one byte, one trap, unless the guest batches".ljust(63, ".") + "\n"
        for i in range(length // 64 + 1)
    ]
    return "".join(lines)[:length]


def _db(text: str) -> str:
    """A db line for arbitrary text (quotes and newlines as numbers)."""
    parts: list[str] = []
    run = ""
    for ch in text:
        if ch.isprintable() and ch not in "'\\;#":
            run += ch
        else:
            if run:
                parts.append(f"'{run}'")
                run = ""
            parts.append(str(ord(ch)))
    if run:
        parts.append(f"'{run}'")
    return "db " + ", ".join(parts)


HELLO = f"""\
; The classic first KVM guest: compute 2+2, print it, halt.
    mov dx, {dev.SERIAL_PORT:#x}    ; serial port: every OUT to it leaves the guest (KVM_EXIT_IO)
    mov al, 2
    add al, 2             ; the arithmetic runs inside the guest, no exit
    add al, '0'           ; as an ASCII digit
    out dx, al            ; exit 1: the VMM prints '4'
    mov al, 10
    out dx, al            ; exit 2: the VMM prints a newline
    hlt                   ; exit 3: KVM_EXIT_HLT, the VMM stops
"""


def hello() -> Program:
    return assemble_program(
        "hello", "2+2 printed on the serial port, then hlt (2 IO + 1 HLT)", HELLO, {"IO": 2, "HLT": 1}, "4\n"
    )


def console_bytewise(length: int = MESSAGE_LEN) -> Program:
    text = message(length)
    src = f"""\
; Print a {length}-byte message one byte at a time: each OUT traps to the VMM.
    mov si, msg
    mov cx, {length}
    mov dx, {dev.SERIAL_PORT:#x}
    cld
next:
    lodsb                 ; al = [si], si += 1  (inside the guest)
    out dx, al            ; one KVM_EXIT_IO per byte
    loop next
    hlt
msg: {_db(text)}
"""
    return assemble_program(
        "console-bytewise",
        f"a {length}-byte message, one OUT per byte ({length} IO + 1 HLT)",
        src,
        {"IO": length, "HLT": 1},
        text,
    )


def console_rep(length: int = MESSAGE_LEN) -> Program:
    text = message(length)
    src = f"""\
; The same message with one string instruction: does 'rep outsb' collapse the exits?
    mov si, msg
    mov cx, {length}
    mov dx, {dev.SERIAL_PORT:#x}
    cld
    rep outsb             ; one instruction, {length} port writes: count the exits
    hlt
msg: {_db(text)}
"""
    return assemble_program(
        "console-rep",
        f"the {length}-byte message with one 'rep outsb' (exits: measure them)",
        src,
        {"HLT": 1},
        text,
    )


def console_hypercall(length: int = MESSAGE_LEN) -> Program:
    text = message(length)
    src = f"""\
; Paravirtual console: the guest knows it runs on a VMM and hands over the whole buffer in one exit.
    mov eax, req          ; guest-physical address of the request block (DS=0, so offset = address)
    mov dx, {dev.HYPERCALL_PORT:#x}
    out dx, eax           ; the one exit: the VMM reads nr, len and {length} bytes from guest memory
    hlt
req:
    dw {dev.HC_CONSOLE_WRITE}                  ; nr: console write
    dw {length}                ; len
    {_db(text)}
"""
    return assemble_program(
        "console-hypercall",
        f"the {length}-byte message in one hypercall (1 IO + 1 HLT)",
        src,
        {"IO": 1, "HLT": 1},
        text,
    )


def console_mmio(length: int = MESSAGE_LEN) -> Program:
    text = message(length)
    src = f"""\
; The message through a memory-mapped console register: one KVM_EXIT_MMIO per byte.
    mov ax, {dev.MMIO_BASE >> 4:#x}
    mov es, ax            ; es:0 = {dev.MMIO_BASE:#x}, a region no memory slot backs
    mov si, msg
    mov cx, {length}
    cld
next:
    lodsb
    xor di, di
    stosb                 ; byte to es:di: KVM cannot complete it, exits with the address and data
    loop next
    hlt
msg: {_db(text)}
"""
    return assemble_program(
        "console-mmio",
        f"the {length}-byte message via MMIO writes ({length} MMIO + 1 HLT)",
        src,
        {"MMIO": length, "HLT": 1},
        text,
    )


def outs(n: int = DEFAULT_N) -> Program:
    src = f"""\
; N port writes to the POST diagnostic port {dev.POST_PORT:#x}: the exit cost with almost no work around it.
    mov dx, {dev.POST_PORT:#x}
    mov ebp, {n}
again:
    out dx, al            ; KVM_EXIT_IO
    dec ebp
    jnz again
    hlt
"""
    return assemble_program("out", f"{n} OUT instructions ({n} IO + 1 HLT)", src, {"IO": n, "HLT": 1})


def cpuids(n: int = DEFAULT_N) -> Program:
    src = f"""\
; N CPUID instructions: they trap, but the kernel answers them itself; the VMM never sees one.
    mov ebp, {n}          ; not ecx: cpuid overwrites eax, ebx, ecx, edx
again:
    xor eax, eax
    cpuid                 ; handled in the kernel: no exit to user space
    dec ebp
    jnz again
    hlt
"""
    return assemble_program(
        "cpuid", f"{n} CPUID instructions, answered in the kernel (0 IO, 1 HLT)", src, {"HLT": 1}
    )


def mmios(n: int = DEFAULT_N) -> Program:
    src = f"""\
; N writes to an MMIO register: every store leaves the guest as KVM_EXIT_MMIO.
    mov ax, {dev.MMIO_BASE >> 4:#x}
    mov ds, ax
    mov ebp, {n}
again:
    mov [{dev.MMIO_SCRATCH:#x}], al      ; store to {dev.MMIO_BASE + dev.MMIO_SCRATCH:#x}: KVM_EXIT_MMIO
    dec ebp
    jnz again
    hlt
"""
    return assemble_program("mmio", f"{n} MMIO writes ({n} MMIO + 1 HLT)", src, {"MMIO": n, "HLT": 1})


def loop(n: int = DEFAULT_N) -> Program:
    src = f"""\
; A loop with no exits: {n} iterations of pure computation, then one hlt.
    mov ecx, {n}
    xor ax, ax
again:
    add ax, 3
    dec ecx
    jnz again
    hlt
"""
    return assemble_program("loop", f"a {n}-iteration loop with no exits (1 HLT)", src, {"HLT": 1})


def debug_exit() -> Program:
    src = f"""\
; Stop through the debug-exit port instead of hlt; the value written becomes the exit value.
    mov dx, {dev.SERIAL_PORT:#x}
    mov al, 'o'
    out dx, al
    mov al, 'k'
    out dx, al
    mov al, 10
    out dx, al
    mov al, 7
    out {dev.DEBUG_EXIT_PORT:#x}, al       ; exit value 7
    hlt                   ; not reached
"""
    return assemble_program(
        "debug-exit",
        "prints 'ok' and stops via the debug-exit port with value 7 (4 IO)",
        src,
        {"IO": 4},
        "ok\n",
    )


def hello_pm() -> Program:
    src = f"""\
bits 32
; The hello program in 32-bit protected mode (flat segments set up by the VMM, no GDT/IDT in memory).
    mov edx, {dev.SERIAL_PORT:#x}
    mov al, 2
    add al, 2
    add al, '0'
    out dx, al
    mov al, 10
    out dx, al
    hlt
"""
    return assemble_program(
        "hello-pm", "hello in 32-bit protected mode (2 IO + 1 HLT)", src, {"IO": 2, "HLT": 1}, "4\n"
    )


def triple_fault() -> Program:
    src = """\
bits 32
; Protected mode with an empty IDT: the first exception cannot be delivered, the double fault cannot
; either, and the CPU shuts down (triple fault). A real PC would reset; KVM reports KVM_EXIT_SHUTDOWN.
    ud2                   ; invalid opcode -> #UD -> no IDT -> #DF -> no IDT -> triple fault
    hlt
"""
    return assemble_program(
        "triple-fault",
        "an invalid opcode with no IDT: triple fault, KVM_EXIT_SHUTDOWN",
        src,
        {"SHUTDOWN": 1},
        None,
    )


def runaway() -> Program:
    src = """\
; Spins forever without an exit: only the VMM's wall-time limit stops it.
spin:
    jmp spin
"""
    return assemble_program(
        "runaway", "an endless loop without exits (stopped by the wall-time limit)", src, {}, None
    )


BUILTINS: dict[str, Callable[..., Program]] = {
    "hello": hello,
    "console-bytewise": console_bytewise,
    "console-rep": console_rep,
    "console-hypercall": console_hypercall,
    "console-mmio": console_mmio,
    "out": outs,
    "cpuid": cpuids,
    "mmio": mmios,
    "loop": loop,
    "debug-exit": debug_exit,
    "hello-pm": hello_pm,
    "triple-fault": triple_fault,
    "runaway": runaway,
    "pages": pages,
    "cr3": cr3_writes,
    "invlpg": invlpgs,
    "ptwrite": ptwrite,
}
TAKES_N = {"out", "cpuid", "mmio", "loop", "cr3"}
TAKES_PAGES = {"pages", "invlpg", "ptwrite"}
TAKES_LENGTH = {"console-bytewise", "console-rep", "console-hypercall", "console-mmio"}


def builtin(name: str, n: int | None = None) -> Program:
    """A built-in program; `n` is the count (out, cpuid, mmio, loop) or message length (console-*)."""
    if name not in BUILTINS:
        raise UsageError(
            f"no built-in program {name!r} (known: {', '.join(BUILTINS)})",
            hint="run 'vmlab kvm programs', or pass a .asm/.hex/.bin file",
        )
    if n is None:
        return BUILTINS[name]()
    if name in TAKES_N:
        if not 1 <= n <= MAX_N:
            raise UsageError(f"-n {n} is out of range for {name!r}", hint=f"use 1..{MAX_N}")
    elif name in TAKES_PAGES:
        pages_n(n)
    elif name in TAKES_LENGTH:
        if not 1 <= n <= 0xFFFF:
            raise UsageError(f"-n {n} is out of range for {name!r} (a message length)", hint="use 1..65535")
    else:
        raise UsageError(
            f"program {name!r} takes no -n",
            hint=f"-n applies to {', '.join(sorted(TAKES_N | TAKES_LENGTH | TAKES_PAGES))}",
        )
    return BUILTINS[name](n)
