"""The reference interpreter: the plainest reading of the specification, with 32-bit wrap-around.

Every engine is compared against this one. It is written for clarity, not speed, and takes an
instruction budget so property tests can discard programs that would run for too long.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from vmlab.isa.machine import BACK7, CLRA, DECA, HALT, INC3A, SETL, Program, Result, back_target, to_int32


class BudgetExceeded(RuntimeError):
    """The program did not halt within the instruction budget."""


def run_reference(program: Program, max_instructions: int | None = None) -> Result:
    code = program.code
    ip, a, l, executed = 0, to_int32(program.a), to_int32(program.l), 0
    while True:
        if max_instructions is not None and executed >= max_instructions:
            raise BudgetExceeded(f"no HALT within {max_instructions} instructions")
        op = code[ip]
        executed += 1
        if op == HALT:
            return Result(a=a, l=l, executed=executed)
        if op == CLRA:
            a = 0
        elif op == INC3A:
            a = to_int32(a + 3)
        elif op == DECA:
            a = to_int32(a - 1)
        elif op == SETL:
            l = a
        elif op == BACK7:
            l = to_int32(l - 1)
            if l > 0:
                ip = back_target(ip)
                continue
        else:
            raise ValueError(f"byte {op} at {ip} is not an opcode")
        ip += 1
