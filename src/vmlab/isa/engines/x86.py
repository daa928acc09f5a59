"""Bonus: tiered translation to x86-64 machine code, run natively through ctypes.

Cold blocks are interpreted in Python; a block entered more than `threshold` times is assembled into
one growing code buffer and chained: each of its exits is a jump, first to a stub that hands the next
guest IP back to Python, re-pointed straight at the successor's code once that is translated too (and
at once when it already is). A hot loop therefore runs as native code end to end: its BACK7 is a `jg`
to its own first byte. Only the ~1 000 blocks of S4 that run more than once are assembled, not all
21 110 static blocks.

Registers: A in eax, L in ecx (32-bit operations, so A and L wrap exactly like the homework's int32),
the instruction count in rdx, advanced by each block's length at its start; rdi points at the state
(a, l, n, next IP) the whole time. The buffer is written through a read+write mapping and run
through a separate read+execute mapping of the same memory (see _CodeBuffer).
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import platform
import struct
import time
from functools import cache

from vmlab.errors import NotAvailable
from vmlab.isa.engines.fold import fold
from vmlab.isa.engines.translate import block_end
from vmlab.isa.machine import BACK7, Result, back_target


class _State(ctypes.Structure):
    _fields_ = [
        ("a", ctypes.c_int32),
        ("l", ctypes.c_int32),
        ("n", ctypes.c_int64),
        ("next", ctypes.c_int32),
    ]


# enter(state, code): mov eax,[rdi]; mov ecx,[rdi+4]; mov rdx,[rdi+8]; jmp rsi
ENTER = bytes([0x8B, 0x07, 0x8B, 0x4F, 0x04, 0x48, 0x8B, 0x57, 0x08, 0xFF, 0xE6])
EPILOGUE = bytes([0x89, 0x07, 0x89, 0x4F, 0x04, 0x48, 0x89, 0x57, 0x08, 0xC3])  # store a, l, n; ret
BACK7_HEAD = bytes([0xFF, 0xC9, 0x85, 0xC9, 0x0F, 0x8F])  # dec ecx; test ecx, ecx; jg rel32
BYTES_PER_INSTRUCTION = 64  # buffer size per guest instruction; when it is full, blocks stay interpreted


def _i32(x: int) -> bytes:
    return struct.pack("<i", x)


@cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


class _CodeBuffer:
    """Code written through one mapping and run through another of the same memory (a memfd).

    The read+write view and the read+execute view are two mappings of one memfd, as JITs on W^X
    systems do: no page is ever writable and executable through the same address, and adding a block
    or re-pointing a jump costs a memory write instead of two mprotect() calls (each a TLB flush).
    x86 keeps instruction fetch coherent with such writes. Both mappings go on exit.
    """

    def __init__(self, size: int) -> None:
        self.size = max(mmap.PAGESIZE, -(-size // mmap.PAGESIZE) * mmap.PAGESIZE)
        self.addr = 0
        self.used = 0
        self.rw: mmap.mmap | None = None

    def __enter__(self) -> _CodeBuffer:
        try:
            fd = os.memfd_create("vmlab-isa-x86", os.MFD_CLOEXEC)
        except (AttributeError, OSError) as e:
            raise NotAvailable(f"memfd_create failed: {e}") from None
        try:
            os.ftruncate(fd, self.size)
            self.rw = mmap.mmap(fd, self.size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            addr = _libc().mmap(None, self.size, mmap.PROT_READ | mmap.PROT_EXEC, mmap.MAP_SHARED, fd, 0)
            if addr is None or addr == ctypes.c_void_p(-1).value:
                errno = ctypes.get_errno()
                self.__exit__()
                raise NotAvailable(
                    f"an executable mapping was refused: errno {errno}",
                    hint="this host forbids executable mappings (SELinux/PaX?); use the Python engines",
                )
            self.addr = int(addr)
        finally:
            os.close(fd)
        return self

    def append(self, code: bytes) -> int:
        assert self.rw is not None
        at = self.used
        self.rw[at : at + len(code)] = code
        self.used += len(code)
        return at

    def patch_rel32(self, at: int, dest: int) -> None:
        """Point the rel32 operand at offset `at` to offset `dest`."""
        assert self.rw is not None
        self.rw[at : at + 4] = _i32(dest - (at + 4))

    def __exit__(self, *exc: object) -> None:
        if self.addr:
            _libc().munmap(self.addr, self.size)
            self.addr = 0
        if self.rw is not None:
            self.rw.close()
            self.rw = None


@cache
def unavailable_reason() -> str | None:
    """None when native code can run here, else why not (the engine is skipped with this reason)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"the host is {platform.machine()}, not x86-64"
    try:
        with _CodeBuffer(mmap.PAGESIZE) as buf:
            buf.append(EPILOGUE)
    except NotAvailable as e:
        return e.message
    except OSError as e:
        return f"cannot load libc: {e}"
    return None


class _Assembler:
    """Blocks assembled on demand into one buffer, their exits chained as successors appear."""

    def __init__(self, code: bytes, buf: _CodeBuffer) -> None:
        self.code = code
        self.buf = buf
        self.blocks: dict[int, int] = {}  # guest entry IP -> offset of its code
        self.pending: dict[int, list[int]] = {}  # guest IP -> rel32 operands jumping to its exit stub
        self.chainings = 0
        self.translate_ns = 0
        self.epilogue = buf.append(EPILOGUE)
        self.enter = buf.append(ENTER)

    def fits(self, start: int) -> bool:
        return self.buf.used + 64 + 8 * (block_end(self.code, start) - start) <= self.buf.size

    def translate(self, start: int) -> int:
        """Assemble the block at `start`, link its exits and every pending jump to it; its offset."""
        t0 = time.perf_counter_ns()
        stop = block_end(self.code, start)
        eff = fold(self.code, start, stop)
        out = bytearray(b"\x48\x81\xc2" + _i32(eff.size))  # add rdx, size
        if eff.l is not None:  # L from A on entry, before A changes
            out += (b"\xb9" + _i32(eff.l.k)) if eff.l.absolute else (b"\x8d\x88" + _i32(eff.l.k))
        if eff.a.absolute:
            out += b"\xb8" + _i32(eff.a.k)  # mov eax, k
        elif eff.a.k:
            out += b"\x05" + _i32(eff.a.k)  # add eax, k
        exits: list[tuple[int, int]] = []  # (offset of rel32 inside `out`, guest target)
        if eff.end == BACK7:
            out += BACK7_HEAD
            exits.append((len(out), back_target(stop - 1)))
            out += b"\0\0\0\0"
            out += b"\xe9"  # jmp rel32: the fall-through
            exits.append((len(out), stop))
            out += b"\0\0\0\0"
        stubs: list[tuple[int, int]] = []
        for at, target in exits:  # an exit stub per exit: hand the target IP to Python
            stubs.append((at, len(out)))
            out += b"\xc7\x47\x10" + _i32(target) + b"\xe9" + b"\0\0\0\0"  # mov [rdi+16], target; jmp
        if eff.end != BACK7:  # HALT
            out += b"\xc7\x47\x10" + _i32(-1) + b"\xe9" + b"\0\0\0\0"
        base = self.buf.append(bytes(out))
        self.blocks[start] = base
        # every exit stub ends with a jmp to the epilogue
        ends = [base + s + 8 for _, s in stubs] + ([base + len(out) - 4] if eff.end != BACK7 else [])
        for at in ends:
            self.buf.patch_rel32(at, self.epilogue)
        for (at, target), (_, stub) in zip(exits, stubs, strict=True):
            dest = self.blocks.get(target)
            if dest is not None:
                self.buf.patch_rel32(base + at, dest)
                self.chainings += 1
            else:
                self.buf.patch_rel32(base + at, base + stub)
                self.pending.setdefault(target, []).append(base + at)
        for at in self.pending.pop(start, []):  # earlier blocks whose exits wait for this one: chain them
            self.buf.patch_rel32(at, base)
            self.chainings += 1
        self.translate_ns += time.perf_counter_ns() - t0
        return base


def run(code: bytes, a: int, l: int, *, threshold: int = 2) -> Result:
    reason = unavailable_reason()
    if reason is not None:
        raise NotAvailable(f"x86 engine unavailable: {reason}")
    with _CodeBuffer(4096 + BYTES_PER_INSTRUCTION * len(code)) as buf:
        asm = _Assembler(code, buf)
        enter = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(buf.addr + asm.enter)
        state = _State(0, 0, 0, 0)
        state_addr = ctypes.addressof(state)
        blocks = asm.blocks
        entries: dict[int, int] = {}
        ip = n = interpreted = calls = 0
        while ip >= 0:
            at = blocks.get(ip)
            if at is not None:
                state.a, state.l, state.n = a, l, n
                enter(state_addr, buf.addr + at)
                a, l, n, ip = state.a, state.l, state.n, state.next
                calls += 1
                continue
            seen = entries.get(ip, 0) + 1
            if seen > threshold and asm.fits(ip):
                asm.translate(ip)
                continue
            entries[ip] = seen
            n0 = n
            while True:  # interpret one block, wrapping A and L to 32 bits as the native code does
                op = code[ip]
                ip += 1
                n += 1
                if op == 2:
                    a = (a + 3 + 0x80000000) % 0x100000000 - 0x80000000
                elif op == 5:
                    l = (l - 1 + 0x80000000) % 0x100000000 - 0x80000000
                    if l > 0:
                        ip -= 7
                    break
                elif op == 4:
                    l = a
                elif op == 3:
                    a = (a - 1 + 0x80000000) % 0x100000000 - 0x80000000
                elif op == 1:
                    a = 0
                else:
                    ip = -1
                    break
            interpreted += n - n0
    return Result(
        a=a,
        l=l,
        executed=n,
        stats={
            "blocks_translated": len(blocks),
            "tier0_blocks": len(entries),
            "chainings": asm.chainings,
            "interpreted": interpreted,
            "native_calls": calls,
            "code_bytes": buf.used,
            "translate_ns": asm.translate_ns,
        },
    )
