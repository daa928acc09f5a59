"""Handler table: the opcode indexes a tuple of functions (the analogue of indirect threading).

In C this replaces the switch's bounds check and compare chain by one indirect jump per instruction;
in CPython each handler is a function call, which costs more than the compare chain it replaces.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from vmlab.isa.machine import Result

State = tuple[int, int, int]


def _halt(ip: int, a: int, l: int) -> State:
    return -1, a, l


def _clra(ip: int, a: int, l: int) -> State:
    return ip + 1, 0, l


def _inc3a(ip: int, a: int, l: int) -> State:
    return ip + 1, a + 3, l


def _deca(ip: int, a: int, l: int) -> State:
    return ip + 1, a - 1, l


def _setl(ip: int, a: int, l: int) -> State:
    return ip + 1, a, a


def _back7(ip: int, a: int, l: int) -> State:
    l -= 1
    return (ip - 6 if l > 0 else ip + 1), a, l


HANDLERS = (_halt, _clra, _inc3a, _deca, _setl, _back7)


def run(code: bytes, a: int, l: int) -> Result:
    handlers = HANDLERS
    ip = 0
    n = 0
    while ip >= 0:
        ip, a, l = handlers[code[ip]](ip, a, l)
        n += 1
    return Result(a=a, l=l, executed=n)
