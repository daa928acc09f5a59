"""Task 4: translate basic blocks to Python functions. Input `t4`.

    vmlab isa run --scenario 4 --engine-module t4_translate.py                 # on first use
    vmlab isa run --scenario 4 --engine-module t4_translate.py -p threshold=8  # staged
    vmlab lab run isa-emulation --task t4-translate --input t4=t4_translate.py -o r.json

A block runs from its entry IP up to and including the first BACK7 or HALT. Write `translate`: the
block's effect as the source text of one function, compiled with compile()/exec(). `run` below is the
dispatcher with its translation cache; with `threshold` K it interprets a block's first K entries and
translates it on the next one (staged translation). Graded: the outcome and `blocks_translated` (with
threshold 0: one per distinct block entry IP the run reaches).
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from collections.abc import Callable

# (a, l, n) -> (next ip or -1 at HALT, a, l, n + instructions of the block)
Block = Callable[[int, int, int], tuple[int, int, int, int]]


def translate(code: bytes, start: int) -> Block:
    """The block at `start` as one Python function. Hint: build lines like "a += 3", "l = a", then
    `exec(compile(source, f"<block {start}>", "exec"), namespace)` and take namespace["block"]. For a
    taken BACK7 return its target IP, otherwise the IP after it; at HALT return -1."""
    lines = ["def block(a, l, n):"]
    ip = start
    while code[ip] not in (0, 5):
        lines.append(["", "    a = 0", "    a += 3", "    a -= 1", "    l = a"][code[ip]])
        ip += 1
    size = ip + 1 - start
    if code[ip] == 0:
        lines.append(f"    return -1, a, l, n + {size}")
    else:
        lines.append("    l -= 1")
        lines.append(f"    if l > 0: return {ip - 6}, a, l, n + {size}")
        lines.append(f"    return {ip + 1}, a, l, n + {size}")
    namespace: dict[str, object] = {}
    exec(compile("\n".join(lines) + "\n", f"<block {start}>", "exec"), namespace)
    return namespace["block"]  # type: ignore[return-value]


def interpret_block(code: bytes, ip: int, a: int, l: int, n: int) -> tuple[int, int, int, int]:
    """Run one block instruction by instruction (given): the cold path of staged translation."""
    while True:
        op = code[ip]
        ip += 1
        n += 1
        if op == 0:
            return -1, a, l, n
        if op == 1:
            a = 0
        elif op == 2:
            a += 3
        elif op == 3:
            a -= 1
        elif op == 4:
            l = a
        else:
            l -= 1
            return (ip - 7 if l > 0 else ip), a, l, n


def run(code: bytes, a: int, l: int, *, threshold: int = 0) -> tuple[int, int, int, dict[str, int]]:
    cache: dict[int, Block] = {}
    entries: dict[int, int] = {}
    translated = interpreted = 0
    ip = n = 0
    while ip >= 0:
        fn = cache.get(ip)
        if fn is None:
            seen = entries.get(ip, 0) + 1
            if seen <= threshold:
                entries[ip] = seen
                n0 = n
                ip, a, l, n = interpret_block(code, ip, a, l, n)
                interpreted += n - n0
                continue
            fn = cache[ip] = translate(code, ip)
            translated += 1
        ip, a, l, n = fn(a, l, n)
    return a, l, n, {"blocks_translated": translated, "interpreted": interpreted}
