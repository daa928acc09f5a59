"""Translate a block for every possible entry point before running anything, then dispatch.

The entry points are the static leaders (IP 0, every BACK7 target, the instruction after a BACK7 or
HALT); each block runs from its leader to the next BACK7 or HALT, so these are exactly the blocks
bt-block would translate if every one of them were reached. The whole translation cost is paid up
front, including blocks a run never reaches: a short run never earns that back.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from vmlab.isa.engines.translate import Block, TranslationStats, leaders_of, translate_unchained
from vmlab.isa.machine import Result


def run(code: bytes, a: int, l: int) -> Result:
    stats = TranslationStats()
    cache: dict[int, Block] = {
        start: translate_unchained(code, start, stats) for start in sorted(leaders_of(code))
    }
    ip = 0
    n = 0
    while ip >= 0:
        ip, a, l, n = cache[ip](a, l, n)
    return Result(a=a, l=l, executed=n, stats=stats.as_dict())
