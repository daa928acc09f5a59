"""Predecoded handlers with operands: the analogue of direct threading.

Predecoding turns every byte into the handler that executes it, with its operands (next IP, jump
target) already bound, so the dispatch loop is `ip = program[ip](...)`: no opcode decode, no table.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from vmlab.isa.engines._handlers import factory
from vmlab.isa.machine import Result, back_target


def predecode(code: bytes) -> list[object]:
    return [factory((op,), False)(i + 1, back_target(i)) for i, op in enumerate(code)]


def run(code: bytes, a: int, l: int) -> Result:
    program = predecode(code)
    ip = 0
    n = 0
    while ip >= 0:
        ip, a, l = program[ip](a, l)  # type: ignore[operator]
        n += 1
    return Result(a=a, l=l, executed=n, stats={"predecoded": len(program)})
