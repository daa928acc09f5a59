"""Bonus: translate the whole program to x86-64 machine code and run it natively through ctypes.

Registers: A in eax, L in ecx (32-bit operations, so A and L wrap exactly like the homework's int32),
the instruction count in rdx, advanced by each static basic block's length at its start. The code is
written into an anonymous read-write mapping, which is then made read+execute (never both writable
and executable), called once, and unmapped — also when the call is interrupted.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import platform
import struct
import time
from functools import cache

from vmlab.errors import NotAvailable
from vmlab.isa.machine import BACK7, CLRA, DECA, HALT, INC3A, SETL, Result, back_target
from vmlab.isa.translate import leaders_of


class _State(ctypes.Structure):
    _fields_ = [("a", ctypes.c_int32), ("l", ctypes.c_int32), ("n", ctypes.c_int64)]


PROLOGUE = bytes([0x8B, 0x07, 0x8B, 0x4F, 0x04, 0x31, 0xD2])  # mov eax,[rdi]; mov ecx,[rdi+4]; xor edx,edx
EPILOGUE = bytes([0x89, 0x07, 0x89, 0x4F, 0x04, 0x48, 0x89, 0x57, 0x08, 0xC3])  # store a, l, n; ret
SIMPLE = {
    CLRA: bytes([0x31, 0xC0]),  # xor eax, eax
    INC3A: bytes([0x83, 0xC0, 0x03]),  # add eax, 3
    DECA: bytes([0x83, 0xE8, 0x01]),  # sub eax, 1
    SETL: bytes([0x89, 0xC1]),  # mov ecx, eax
}
BACK7_HEAD = bytes([0xFF, 0xC9, 0x85, 0xC9, 0x0F, 0x8F])  # dec ecx; test ecx, ecx; jg rel32


def assemble(code: bytes) -> tuple[bytes, int]:
    """Machine code for the whole program, and the number of static blocks it counts by."""
    leaders = leaders_of(code)
    out = bytearray(PROLOGUE)
    label: dict[int, int] = {}
    fixups: list[tuple[int, int]] = []  # (offset of a rel32, guest target; -1 = epilogue)
    block_len: dict[int, int] = {}
    start = None
    for i, op in enumerate(code):  # static block lengths, so each block adds its size once
        if i in leaders or start is None:
            start = i
        block_len[start] = block_len.get(start, 0) + 1
        if op in (BACK7, HALT):
            start = None
    for i, op in enumerate(code):
        label[i] = len(out)
        if i in block_len:
            out += b"\x48\x81\xc2" + struct.pack("<i", block_len[i])  # add rdx, imm32
        if op in SIMPLE:
            out += SIMPLE[op]
        elif op == BACK7:
            out += BACK7_HEAD
            fixups.append((len(out), back_target(i)))
            out += b"\0\0\0\0"
        else:  # HALT
            out += b"\xe9"
            fixups.append((len(out), -1))
            out += b"\0\0\0\0"
    epilogue = len(out)
    out += EPILOGUE
    for at, target in fixups:
        dest = epilogue if target < 0 else label[target]
        out[at : at + 4] = struct.pack("<i", dest - (at + 4))
    return bytes(out), len(block_len)


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
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


class _Executable:
    """An anonymous mapping holding `code`, read+execute only; unmapped on exit."""

    def __init__(self, code: bytes) -> None:
        self.size = max(mmap.PAGESIZE, -(-len(code) // mmap.PAGESIZE) * mmap.PAGESIZE)
        self.code = code
        self.addr: int | None = None

    def __enter__(self) -> int:
        libc = _libc()
        addr: int | None = libc.mmap(
            None, self.size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0
        )
        if addr is None or addr == ctypes.c_void_p(-1).value:
            raise NotAvailable(f"mmap of {self.size} bytes failed: errno {ctypes.get_errno()}")
        self.addr = int(addr)
        ctypes.memmove(addr, self.code, len(self.code))
        if libc.mprotect(addr, self.size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
            errno = ctypes.get_errno()
            self.__exit__()
            raise NotAvailable(
                f"mprotect(PROT_EXEC) refused: errno {errno}",
                hint="this host forbids executable mappings (SELinux/PaX?); use the Python engines",
            )
        return self.addr

    def __exit__(self, *exc: object) -> None:
        if self.addr is not None:
            _libc().munmap(self.addr, self.size)
            self.addr = None


@cache
def unavailable_reason() -> str | None:
    """None when native code can run here, else why not (the engine is skipped with this reason)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"the host is {platform.machine()}, not x86-64"
    try:
        with _Executable(EPILOGUE):
            pass
    except NotAvailable as e:
        return e.message
    except OSError as e:
        return f"cannot load libc: {e}"
    return None


def run(code: bytes, a: int, l: int) -> Result:
    reason = unavailable_reason()
    if reason is not None:
        raise NotAvailable(f"x86 engine unavailable: {reason}")
    t0 = time.perf_counter_ns()
    machine, blocks = assemble(code)
    translate_ns = time.perf_counter_ns() - t0
    state = _State(a, l, 0)
    with _Executable(machine) as addr:
        fn = ctypes.CFUNCTYPE(None, ctypes.POINTER(_State))(addr)
        fn(ctypes.byref(state))
    return Result(
        a=state.a,
        l=state.l,
        executed=state.n,
        stats={"blocks_translated": blocks, "code_bytes": len(machine), "translate_ns": translate_ns},
    )
