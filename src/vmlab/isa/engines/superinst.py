"""Superinstructions: profile which adjacent opcode pairs execute most, then fuse them.

The first `profile` instructions run on single handlers while every executed pair (op at IP, op at
IP+1) is counted; then the `top` most frequent pairs become superinstructions at every site where they
occur, and execution continues from where profiling stopped. A fused handler covers two instructions
and jumps to IP+2; the single handler stays at IP+1 so a BACK7 may still land there.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from collections import Counter

from vmlab.isa.engines._handlers import factory
from vmlab.isa.machine import BACK7, HALT, Result, back_target


def run(code: bytes, a: int, l: int, *, profile: int = 20_000, top: int = 6) -> Result:
    singles = [factory((op,), True)(i + 1, back_target(i)) for i, op in enumerate(code)]
    size = len(code)
    pairs: Counter[tuple[int, int]] = Counter()
    ip = 0
    n = 0
    while ip >= 0 and n < profile:
        op = code[ip]
        if op != BACK7 and op != HALT and ip + 1 < size:
            pairs[(op, code[ip + 1])] += 1
        ip, a, l, n = singles[ip](a, l, n)
    chosen = {pair for pair, _ in pairs.most_common(top)}
    program = list(singles)
    sites = 0
    for i in range(size - 1):
        pair = (code[i], code[i + 1])
        if pair in chosen:
            program[i] = factory(pair, True)(i + 2, back_target(i + 1))
            sites += 1
    while ip >= 0:
        ip, a, l, n = program[ip](a, l, n)
    return Result(
        a=a,
        l=l,
        executed=n,
        stats={"superinstructions": len(chosen), "fused_sites": sites, "profiled": min(n, profile)},
    )
