"""Chained blocks plus superblocks for hot loops.

A taken BACK7 exit counts its uses; after `hot` of them the loop it closes becomes a superblock: the
loop body with the body appended again after the BACK7 (unrolled `unroll` times), side exits where L
runs out, and its back edge chained to itself. One trampoline step then runs `unroll` iterations.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from vmlab.isa.engines.translate import ChainingTranslator
from vmlab.isa.machine import Result


def run(code: bytes, a: int, l: int, *, hot: int = 4, unroll: int = 2) -> Result:
    tr = ChainingTranslator(code, hot=hot, unroll=unroll)
    fn = tr.block(0)
    n = 0
    while fn is not None:
        fn, a, l, n = fn(a, l, n)
    return Result(a=a, l=l, executed=n, stats=tr.stats.as_dict())
