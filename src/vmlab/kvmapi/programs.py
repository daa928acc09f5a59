"""Built-in guest programs (commented assembler) and loaders for students' own programs.

Each program is a lesson about where exits come from; `expect` records the exits the VMM should see
(the lab's checks and the tests use the same numbers, written out there independently).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vmlab.errors import UsageError
from vmlab.kvmapi import devices as dev
from vmlab.kvmapi.asm import assemble

MESSAGE_LEN = 1024
DEFAULT_N = 1000
MAX_N = 10_000_000


@dataclass(frozen=True)
class Program:
    name: str
    code: bytes
    description: str = ""
    bits: int = 16
    org: int = dev.LOAD_ADDR
    source: str | None = None
    expect: dict[str, int] = field(default_factory=dict)
    expect_output: str | None = None

    @property
    def entry(self) -> int:
        return self.org


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


def _asm(
    name: str, description: str, source: str, expect: dict[str, int], output: str | None = ""
) -> Program:
    a = assemble(source, name=name)
    return Program(name, a.code, description, a.bits, a.org, source, expect, output)


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
    return _asm(
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
    return _asm(
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
    return _asm(
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
    return _asm(
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
    return _asm(
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
    return _asm("out", f"{n} OUT instructions ({n} IO + 1 HLT)", src, {"IO": n, "HLT": 1})


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
    return _asm("cpuid", f"{n} CPUID instructions, answered in the kernel (0 IO, 1 HLT)", src, {"HLT": 1})


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
    return _asm("mmio", f"{n} MMIO writes ({n} MMIO + 1 HLT)", src, {"MMIO": n, "HLT": 1})


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
    return _asm("loop", f"a {n}-iteration loop with no exits (1 HLT)", src, {"HLT": 1})


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
    return _asm(
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
    return _asm("hello-pm", "hello in 32-bit protected mode (2 IO + 1 HLT)", src, {"IO": 2, "HLT": 1}, "4\n")


def triple_fault() -> Program:
    src = """\
bits 32
; Protected mode with an empty IDT: the first exception cannot be delivered, the double fault cannot
; either, and the CPU shuts down (triple fault). A real PC would reset; KVM reports KVM_EXIT_SHUTDOWN.
    ud2                   ; invalid opcode -> #UD -> no IDT -> #DF -> no IDT -> triple fault
    hlt
"""
    return _asm(
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
    return _asm("runaway", "an endless loop without exits (stopped by the wall-time limit)", src, {}, None)


# ---- paging: 64-bit long mode on page tables the VMM builds (vmm.build_page_tables) ----------------
# This host's KVM refuses paging in 32-bit mode (see build_page_tables), so these guests are `bits 64`.
# The user-space exits are fixed (1 HLT, or 1 IO for ptwrite); what differs between hosts is what the
# kernel does for them: its stats fd counts page faults (pf_*), TLB flushes and invlpg.

PAGE_ALIAS = 0x60000  # the frame ptwrite maps every page to


def _pages_n(n: int) -> int:
    if not 1 <= n <= dev.MAX_PAGES:
        raise UsageError(f"{n} pages is out of range", hint=f"use 1..{dev.MAX_PAGES} (0x20000-0x5FFFF)")
    return n


def pages(n: int = 32) -> Program:
    n = _pages_n(n)
    src = f"""\
bits 64
; Touch {n} fresh pages with paging on: one store each. The VMM's page tables map them, but the host
; has not yet: the first touch faults in the kernel (EPT violation, or a shadow page-table fault).
    mov eax, {dev.PAGES_BASE:#x}
    mov ecx, {n}
again:
    mov dword [rax], ecx  ; first touch of this page
    add eax, 0x1000
    dec ecx
    jnz again
    hlt                   ; the only exit to user space
"""
    return _asm("pages", f"touch {n} fresh pages in long mode with paging (1 HLT)", src, {"HLT": 1})


def cr3_writes(n: int = DEFAULT_N) -> Program:
    src = f"""\
bits 64
; {n} writes of CR3 (reload the same page-table root): each flushes the guest's TLB. Without nested
; paging the hypervisor must trap every one to switch its shadow page tables; with EPT/NPT it need not.
    mov ecx, {n}
again:
    mov rax, cr3
    mov cr3, rax          ; a CR3 write
    dec ecx
    jnz again
    hlt
"""
    return _asm(
        "cr3", f"{n} CR3 writes in long mode (1 HLT; the kernel's counters differ by host)", src, {"HLT": 1}
    )


def invlpgs(n: int = 32) -> Program:
    n = _pages_n(n)
    src = f"""\
bits 64
; Touch {n} pages and invalidate each one's TLB entry with invlpg: with shadow paging KVM traps invlpg
; to drop the shadow entry (its stats fd counts `invlpg`); with EPT/NPT invlpg runs in the guest.
    mov eax, {dev.PAGES_BASE:#x}
    mov ecx, {n}
again:
    mov dword [rax], ecx
    invlpg [rax]
    add eax, 0x1000
    dec ecx
    jnz again
    hlt
"""
    return _asm("invlpg", f"touch and invlpg {n} pages (1 HLT)", src, {"HLT": 1})


def ptwrite(n: int = 32) -> Program:
    n = _pages_n(n)
    pte = dev.PT_ADDR + (dev.PAGES_BASE >> 12) * 8
    src = f"""\
bits 64
; The guest edits its own page tables: {n} PTEs are pointed at one frame ({PAGE_ALIAS:#x}), each followed
; by invlpg and a store through the new mapping. A shadow-paging hypervisor write-protects guest page
; tables and must trap each of these PTE writes; with EPT/NPT they are ordinary stores.
    mov eax, {dev.PAGES_BASE:#x}   ; linear page i
    mov edx, {pte:#x}     ; its PTE (PT at {dev.PT_ADDR:#x}, 8 bytes per page)
    mov ecx, {n}
again:
    mov dword [rdx], {PAGE_ALIAS | 3:#x}  ; PTE: present, writable, frame {PAGE_ALIAS:#x}
    invlpg [rax]          ; forget the old translation
    mov dword [rax], ecx  ; this store lands in frame {PAGE_ALIAS:#x}
    add eax, 0x1000
    add edx, 8
    dec ecx
    jnz again
    mov eax, [{PAGE_ALIAS:#x}]     ; read the frame through its identity mapping: the last value, 1
    out {dev.DEBUG_EXIT_PORT:#x}, al       ; exit value 1 proves the remapping took effect
"""
    return _asm(
        "ptwrite", f"remap {n} PTEs to one frame, invlpg, store (1 IO, exit value 1)", src, {"IO": 1}, ""
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
        _pages_n(n)
    elif name in TAKES_LENGTH:
        if not 1 <= n <= 0xFFFF:
            raise UsageError(f"-n {n} is out of range for {name!r} (a message length)", hint="use 1..65535")
    else:
        raise UsageError(
            f"program {name!r} takes no -n",
            hint=f"-n applies to {', '.join(sorted(TAKES_N | TAKES_LENGTH | TAKES_PAGES))}",
        )
    return BUILTINS[name](n)


def from_file(path: Path, *, bits: int = 16) -> Program:
    """A student's program: .asm/.s (this assembler), .hex (hex bytes, ; or # comments) or .bin (raw)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"program file {path} does not exist") from None
    except OSError as e:
        raise UsageError(f"cannot read program file {path}: {e.strerror}") from None
    suffix = path.suffix.lower()
    name = path.name
    if suffix in (".asm", ".s"):
        try:
            source = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not UTF-8 text", hint="save the assembler file as UTF-8") from None
        a = assemble(source, name=str(path))
        if not a.code:
            raise UsageError(
                f"{path} assembles to no code", hint="write at least one instruction (end with hlt)"
            )
        return Program(name, a.code, f"assembled from {path}", a.bits, a.org, source)
    if suffix == ".hex":
        code = parse_hex(raw.decode("utf-8", "replace"), str(path))
    elif suffix == ".bin":
        code = raw
    else:
        raise UsageError(
            f"{path}: unknown program file type {suffix or '(none)'!r}",
            hint="use .asm or .s (assembler), .hex (hex bytes) or .bin (raw code)",
        )
    if not code:
        raise UsageError(
            f"{path} holds no code", hint="the guest needs at least one instruction, e.g. f4 (hlt)"
        )
    if bits not in (16, 32, 64):
        raise UsageError(
            f"--bits {bits} is not supported",
            hint="use 16 (real mode), 32 (protected mode) or 64 (long mode with paging)",
        )
    return Program(name, code, f"loaded from {path}", bits)


_HEX = re.compile(r"^(?:0x)?([0-9a-fA-F]{2})+$")


def parse_hex(text: str, name: str = "<hex>") -> bytes:
    """Whitespace-separated hex bytes ('b0 02', 'b002', '0xb0'); ';' or '#' start a comment."""
    out = bytearray()
    for lineno, line in enumerate(text.splitlines(), 1):
        body = re.split(r"[;#]", line, maxsplit=1)[0]
        for tok in body.replace(",", " ").split():
            if not _HEX.match(tok):
                raise UsageError(
                    f"{name} line {lineno}: {tok!r} is not hex bytes",
                    hint="write pairs of hex digits like 'b0 02 f4'",
                )
            out += bytes.fromhex(tok[2:] if tok.lower().startswith("0x") else tok)
    return bytes(out)
