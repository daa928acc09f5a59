"""Decode-and-dispatch: fetch a byte, branch on it, execute, count. The baseline of every speedup.

The if-chain is in opcode order, as a C switch reads, with no reordering by frequency, and the
counter is incremented per instruction like a retired-instruction counter: a fair, plain baseline.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from vmlab.isa.machine import Result


def run(code: bytes, a: int, l: int) -> Result:
    ip = 0
    n = 0
    while True:
        op = code[ip]
        ip += 1
        n += 1
        if op == 0:
            return Result(a=a, l=l, executed=n)
        elif op == 1:
            a = 0
        elif op == 2:
            a += 3
        elif op == 3:
            a -= 1
        elif op == 4:
            l = a
        else:
            l -= 1
            if l > 0:
                ip -= 7
