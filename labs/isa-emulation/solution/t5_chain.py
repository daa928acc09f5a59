"""Task 5: chain translated blocks. Input `t5`.

    vmlab isa run --scenario 4 --engine-module t5_chain.py
    vmlab lab run isa-emulation --task t5-chain --input t5=t5_chain.py -o r.json

A block here returns its successor itself, not an IP: each of its exits reads a slot (`slots["TAKEN"]`,
`slots["NEXT"]`) that first holds a stub made by `exit_stub`. Write the stub: the first time its exit
is taken it finds (or translates) the successor, patches the slot to it — one chaining — and hands it
on. From then on the exit goes straight to the successor: no cache lookup, no IP. Graded: the outcome,
`chainings` (one per block exit ever taken) and `blocks_translated`.

The "translation" here is a closure that walks the block's opcodes, so this file runs on its own;
swap in your task-4 translator once chaining works.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (a, l, n) -> (successor block or None at HALT, a, l, n)
Chained = Callable[[int, int, int], tuple[Any, int, int, int]]


class Chainer:
    def __init__(self, code: bytes) -> None:
        self.code = code
        self.cache: dict[int, Chained] = {}
        self.blocks_translated = 0
        self.chainings = 0

    def block(self, start: int) -> Chained:
        fn = self.cache.get(start)
        if fn is None:
            fn = self.cache[start] = self.translate(start)
            self.blocks_translated += 1
        return fn

    def exit_stub(self, target: int, slots: dict[str, Chained], name: str) -> Chained:
        """What slots[name] holds until the exit to guest IP `target` is first taken."""

        def stub(a: int, l: int, n: int) -> tuple[Any, int, int, int]:
            fn = self.block(target)
            slots[name] = fn
            self.chainings += 1
            return fn, a, l, n

        return stub

    def translate(self, start: int) -> Chained:
        """The block at `start` with its exits in slots (given)."""
        code = self.code
        stop = start
        while code[stop] not in (0, 5):
            stop += 1
        ops = code[start:stop]
        size = stop + 1 - start
        slots: dict[str, Chained] = {}
        if code[stop] == 5:
            slots["TAKEN"] = self.exit_stub(stop - 6, slots, "TAKEN")
            slots["NEXT"] = self.exit_stub(stop + 1, slots, "NEXT")

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
            if not slots:
                return None, a, l, n + size
            l -= 1
            return (slots["TAKEN"] if l > 0 else slots["NEXT"]), a, l, n + size

        return block


def run(code: bytes, a: int, l: int) -> tuple[int, int, int, dict[str, int]]:
    chainer = Chainer(code)
    fn: Chained | None = chainer.block(0)
    n = 0
    while fn is not None:  # the trampoline
        fn, a, l, n = fn(a, l, n)
    return a, l, n, {"blocks_translated": chainer.blocks_translated, "chainings": chainer.chainings}
