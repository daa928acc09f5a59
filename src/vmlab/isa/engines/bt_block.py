"""Translate each basic block to a Python function the first time it is reached.

The dispatcher looks the block up by guest IP in the translation cache, translates on a miss, calls
it, and gets the next IP back. Block-local optimisation folds runs of INC3A/DECA into one addition and
drops dead CLRAs and SETLs (fold.py).
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from vmlab.isa.engines.translate import Block, TranslationStats, translate_unchained
from vmlab.isa.machine import Result


def run(code: bytes, a: int, l: int) -> Result:
    stats = TranslationStats()
    cache: dict[int, Block] = {}
    get = cache.get
    ip = 0
    n = 0
    while ip >= 0:
        fn = get(ip)
        if fn is None:
            fn = cache[ip] = translate_unchained(code, ip, stats)
        ip, a, l, n = fn(a, l, n)
    return Result(a=a, l=l, executed=n, stats=stats.as_dict())
