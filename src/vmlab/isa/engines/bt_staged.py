"""Staged emulation: interpret a block the first `threshold` times it is entered, then translate it.

Most blocks of a straight-line program run once or a few times; interpreting them is cheaper than
compiling them. Only blocks that come back often enough pay for their translation.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from vmlab.isa.engines.translate import Block, TranslationStats, translate_unchained
from vmlab.isa.machine import Result


def run(code: bytes, a: int, l: int, *, threshold: int = 8) -> Result:
    stats = TranslationStats()
    cache: dict[int, Block] = {}
    entries: dict[int, int] = {}
    get = cache.get
    interpreted = 0
    ip = 0
    n = 0
    while ip >= 0:
        fn = get(ip)
        if fn is not None:
            ip, a, l, n = fn(a, l, n)
            continue
        seen = entries.get(ip, 0) + 1
        if seen > threshold:
            fn = cache[ip] = translate_unchained(code, ip, stats)
            ip, a, l, n = fn(a, l, n)
            continue
        entries[ip] = seen
        start_n = n
        while True:  # interpret one block: up to and including its BACK7 or HALT
            op = code[ip]
            ip += 1
            n += 1
            if op == 2:
                a += 3
            elif op == 5:
                l -= 1
                if l > 0:
                    ip -= 7
                break
            elif op == 4:
                l = a
            elif op == 3:
                a -= 1
            elif op == 1:
                a = 0
            else:
                ip = -1
                break
        interpreted += n - start_n
    stats.extra["interpreted"] = interpreted
    return Result(a=a, l=l, executed=n, stats=stats.as_dict())
