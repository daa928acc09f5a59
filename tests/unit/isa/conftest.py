"""Fixtures of the ISA tests: engines by name, with x86 skipped where this host cannot run native code.

Whether it can is decided by a probe of the tests' own (`native_code_refused`), never by the engine's
`unavailable_reason`: a bug there would otherwise turn the x86 engine's tests into skips.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
from functools import cache

import pytest
from tests.conftest import unavailable

from vmlab.isa.engines import ENGINES, Engine, get_engine

# mov eax, 42; ret (Intel SDM vol. 2: B8+rd id is MOV r32, imm32; C3 is RET)
FORTY_TWO = bytes([0xB8, 42, 0, 0, 0, 0xC3])


@cache
def native_code_refused() -> str | None:
    """None when this host runs x86-64 code written through one mapping of a memfd and executed
    through another (what a JIT does under W^X), else why not. Runs the code: it must return 42."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"the host is {platform.machine()}, not x86-64"
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    fd = os.memfd_create("tests-native-probe", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, mmap.PAGESIZE)
        with mmap.mmap(fd, mmap.PAGESIZE, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE) as rw:
            rw[: len(FORTY_TWO)] = FORTY_TWO
        addr = libc.mmap(None, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_EXEC, mmap.MAP_SHARED, fd, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            return f"an executable mapping was refused (errno {ctypes.get_errno()})"
    finally:
        os.close(fd)
    try:
        got = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
    finally:
        libc.munmap(addr, mmap.PAGESIZE)
    return None if got == 42 else f"the probe's native code returned {got}, not 42"


def engine_or_skip(name: str) -> Engine:
    if name == "x86":
        reason = native_code_refused()
        if reason is not None:
            # a property of the host, not something `make test` sets up: a skip also under CI
            unavailable("the x86 engine", reason, set_up_by_make_test=False)
    return get_engine(name)


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest) -> tuple[str, Engine]:
    return request.param, engine_or_skip(request.param)


@pytest.fixture(scope="module", params=list(ENGINES))
def each_engine(request: pytest.FixtureRequest) -> tuple[str, Engine]:
    """The same, module-scoped: Hypothesis tests take no function-scoped fixture."""
    return request.param, engine_or_skip(request.param)
