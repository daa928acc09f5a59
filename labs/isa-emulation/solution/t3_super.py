"""Task 3: superinstructions from profiled opcode pairs. Input `t3`.

    vmlab isa run --scenario 3 --engine-module t3_super.py -p top=6 -p profile=20000
    vmlab lab run isa-emulation --task t3-super --input t3=t3_super.py -o r.json

`run` profiles the first `profile` instructions on single handlers, counting every executed adjacent
pair (opcode at IP, opcode at IP+1), asks `select` which pairs to fuse, puts a `fused` handler at every
site of a chosen pair, and runs on. Write `select` and `fused`. Graded: the outcome, the number of
superinstructions and the number of fused sites (which the reference's choice fixes).
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from collections.abc import Callable

# (a, l, n) -> (next ip or -1 at HALT, a, l, n)
Handler = Callable[[int, int, int], tuple[int, int, int, int]]


def select(pairs: dict[tuple[int, int], int], top: int) -> list[tuple[int, int]]:
    """The `top` most frequent pairs that can be fused. Not every pair can: think about a pair whose
    first instruction is a jump (or HALT)."""
    ok = [(p, c) for p, c in pairs.items() if p[0] not in (0, 5)]
    ok.sort(key=lambda pc: -pc[1])
    return [p for p, _ in ok[:top]]


def fused(first: int, second: int, next_ip: int, target: int) -> Handler:
    """A handler running `first` and then `second` (at IP and IP+1). `next_ip` is IP+2; `target` is
    where `second` jumps when it is a taken BACK7."""
    one = single(first, next_ip - 1, target)
    two = single(second, next_ip, target)

    def handler(a: int, l: int, n: int) -> tuple[int, int, int, int]:
        _, a, l, n = one(a, l, n)
        return two(a, l, n)

    return handler


def single(op: int, next_ip: int, target: int) -> Handler:
    """One instruction as a handler (given)."""
    if op == 0:
        return lambda a, l, n: (-1, a, l, n + 1)
    if op == 1:
        return lambda a, l, n: (next_ip, 0, l, n + 1)
    if op == 2:
        return lambda a, l, n: (next_ip, a + 3, l, n + 1)
    if op == 3:
        return lambda a, l, n: (next_ip, a - 1, l, n + 1)
    if op == 4:
        return lambda a, l, n: (next_ip, a, a, n + 1)
    return lambda a, l, n: (target if l - 1 > 0 else next_ip, a, l - 1, n + 1)


def run(
    code: bytes, a: int, l: int, *, profile: int = 20_000, top: int = 6
) -> tuple[int, int, int, dict[str, int]]:
    size = len(code)
    program = [single(op, i + 1, i - 6) for i, op in enumerate(code)]
    pairs: dict[tuple[int, int], int] = {}
    ip = n = 0
    while ip >= 0 and n < profile:
        if ip + 1 < size:
            key = (code[ip], code[ip + 1])
            pairs[key] = pairs.get(key, 0) + 1
        ip, a, l, n = program[ip](a, l, n)
    chosen = set(select(pairs, top))
    sites = 0
    for i in range(size - 1):
        if (code[i], code[i + 1]) in chosen:
            program[i] = fused(code[i], code[i + 1], i + 2, i + 1 - 6)
            sites += 1
    while ip >= 0:
        ip, a, l, n = program[ip](a, l, n)
    stats = {"superinstructions": len(chosen), "fused_sites": sites, "profiled": min(n, profile)}
    return a, l, n, stats
