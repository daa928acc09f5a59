"""Task 6: superblocks for hot loops. Input `t6`.

    vmlab isa run --scenario 4 --engine-module t6_superblock.py -p hot=4 -p unroll=4
    vmlab lab run isa-emulation --task t6-superblock --input t6=t6_superblock.py -o r.json

The driver below counts how often each taken BACK7 exit is used; the `hot`-th time it asks
`form_superblock` for the loop that exit jumps to and, when it gets one, sends that exit (and every
later one to the same loop) to it. Write `form_superblock`: for a simple loop (the block at `head` ends
at a BACK7 that jumps back to `head`) one function running the body `unroll` times per call, leaving
through `leave` when L runs out; None for any other loop. Graded: the outcome and `superblocks` (loops
that became superblocks).

Plain blocks here are closures that walk their opcodes and return to the driver after each block, so
this file runs on its own; combine it with your task-4 translator and task-5 chaining for speed.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (a, l, n) -> (next callable or None at HALT, a, l, n)
Chained = Callable[[int, int, int], tuple[Any, int, int, int]]


def form_superblock(code: bytes, head: int, unroll: int, leave: Chained) -> Chained | None:
    """The loop at `head` as one function (a, l, n) -> (itself or `leave`, a, l, n), or None."""
    end = head
    while code[end] not in (0, 5):
        end += 1
    if code[end] != 5 or end - 6 != head:
        return None
    body = code[head:end]
    size = end + 1 - head

    def superblock(a: int, l: int, n: int) -> tuple[Chained, int, int, int]:
        for _ in range(unroll):
            for op in body:
                if op == 2:
                    a += 3
                elif op == 1:
                    a = 0
                elif op == 3:
                    a -= 1
                else:
                    l = a
            l -= 1
            n += size
            if l <= 0:
                return leave, a, l, n
        return superblock, a, l, n

    return superblock


class Driver:
    def __init__(self, code: bytes, hot: int, unroll: int) -> None:
        self.code = code
        self.hot = hot
        self.unroll = unroll
        self.cache: dict[int, Chained] = {}
        self.superblocks: dict[int, Chained | None] = {}
        self.uses: dict[int, int] = {}
        self.blocks_translated = 0

    def block(self, start: int) -> Chained:
        fn = self.cache.get(start)
        if fn is None:
            fn = self.cache[start] = self._block(start)
            self.blocks_translated += 1
        return fn

    def _enter(self, target: int) -> Chained:
        """Enter the block at `target` later (the trampoline calls it)."""
        return lambda a, l, n: (self.block(target), a, l, n)

    def taken(self, src: int, target: int) -> Chained:
        """Where the taken exit of the block entered at `src` goes: a superblock once that exit is hot."""
        sb = self.superblocks.get(target)
        if sb is not None:
            return sb
        uses = self.uses[src] = self.uses.get(src, 0) + 1
        if self.hot > 0 and uses >= self.hot and target not in self.superblocks:
            stop = target
            while self.code[stop] not in (0, 5):
                stop += 1
            leave = self._enter(stop + 1)
            sb = self.superblocks[target] = form_superblock(self.code, target, self.unroll, leave)
            if sb is not None:
                return sb
        return self.block(target)

    def _block(self, start: int) -> Chained:
        code = self.code
        stop = start
        while code[stop] not in (0, 5):
            stop += 1
        ops = code[start:stop]
        size = stop + 1 - start
        halts = code[stop] == 0

        def block(a: int, l: int, n: int) -> tuple[Any, int, int, int]:
            for op in ops:
                if op == 2:
                    a += 3
                elif op == 1:
                    a = 0
                elif op == 3:
                    a -= 1
                else:
                    l = a
            if halts:
                return None, a, l, n + size
            l -= 1
            if l > 0:
                return self.taken(start, stop - 6), a, l, n + size
            return self.block(stop + 1), a, l, n + size

        return block


def run(
    code: bytes, a: int, l: int, *, hot: int = 4, unroll: int = 2
) -> tuple[int, int, int, dict[str, int]]:
    driver = Driver(code, hot, unroll)
    fn: Chained | None = driver.block(0)
    n = 0
    while fn is not None:
        fn, a, l, n = fn(a, l, n)
    formed = sum(1 for sb in driver.superblocks.values() if sb is not None)
    return a, l, n, {"superblocks": formed, "blocks_translated": driver.blocks_translated}
