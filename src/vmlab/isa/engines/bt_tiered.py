"""Tiered translation: interpret cold blocks, translate warm ones, turn hot loops into superblocks.

This is how real dynamic translators spend their budget. QEMU translates a block on first use but
caches and chains it; HotSpot interprets a method until its counters trip, compiles it with C1, and
recompiles the hottest with C2; Valgrind and DynamoRIO first run blocks, then build traces from hot
ones. Here, per block entry IP:

- tier 0: the block is interpreted (one closure per entry IP counts its entries);
- tier 1: after `threshold` entries it is translated to a Python function (fold.py) whose exits are
  patchable slots; an exit is chained to its successor once the successor is translated too, so the
  trampoline never looks up a cold block it would only interpret;
- tier 2: a taken BACK7 exit used `hot` times turns the loop it closes (a simple loop: its body is one
  straight block) into a superblock: the body unrolled `unroll` times inside a Python `while` loop,
  so the back edge is a local jump and the trampoline is left only when L runs out.

Most of S4's 13 036 dynamic blocks run once or twice and never pay for compile(); the few hundred
that carry nearly all of the 21.5 M instructions run as translated code or superblocks.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vmlab.isa.engines.fold import fold
from vmlab.isa.engines.translate import Chained, TranslationStats, _compile, block_end
from vmlab.isa.machine import BACK7, Result, back_target


class Tiers:
    """The three tiers of one run; `runner(ip)` is what the trampoline calls to enter a block at `ip`."""

    def __init__(self, code: bytes, *, threshold: int, hot: int, unroll: int) -> None:
        self.code = code
        self.threshold = threshold
        self.hot = hot
        self.unroll = max(1, unroll)
        self.stats = TranslationStats()
        self.translated: dict[int, Chained] = {}
        self.cold: dict[int, Chained] = {}
        self.superblocks: dict[int, Chained | None] = {}
        self.interpreted = 0

    def runner(self, ip: int) -> Chained:
        fn = self.translated.get(ip)
        if fn is not None:
            return fn
        cold = self.cold.get(ip)
        if cold is None:
            cold = self.cold[ip] = self._interpreter(ip)
        return cold

    # ---- tier 0 ------------------------------------------------------------------------------------

    def _interpreter(self, start: int) -> Chained:
        code = self.code
        threshold = self.threshold
        entries = 0

        def interpret(a: int, l: int, n: int) -> tuple[Any, int, int, int]:
            nonlocal entries
            entries += 1
            if entries > threshold:
                fn = self.translated[start] = self._translate(start)
                return fn, a, l, n
            ip = start
            n0 = n
            while True:  # one block: up to and including its BACK7 or HALT
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
                    self.interpreted += n - n0
                    return None, a, l, n
            self.interpreted += n - n0
            return self.runner(ip), a, l, n

        return interpret

    # ---- tier 1 ------------------------------------------------------------------------------------

    def _translate(self, start: int) -> Chained:
        t0 = time.perf_counter_ns()
        eff = fold(self.code, start, block_end(self.code, start))
        stop = start + eff.size
        lines = ["def block(a, l, n):", *eff.lines()]
        ns: dict[str, Any] = {}
        if eff.end == BACK7:
            lines.append(f"    if l > 0: return TAKEN, a, l, n + {eff.size}")
            lines.append(f"    return NEXT, a, l, n + {eff.size}")
            ns["TAKEN"] = self._exit(back_target(stop - 1), ns, "TAKEN", loop=self.hot > 0)
            ns["NEXT"] = self._exit(stop, ns, "NEXT", loop=False)
        else:
            lines.append(f"    return None, a, l, n + {eff.size}")
        fn: Chained = _compile("\n".join(lines) + "\n", f"<block {start}>", ns, self.stats)
        self.stats.blocks_translated += 1
        self.stats.folded_away += eff.dropped
        self.stats.translate_ns += time.perf_counter_ns() - t0
        return fn

    def _exit(self, target: int, slot: dict[str, Any], name: str, *, loop: bool) -> Chained:
        """An exit slot's stub: chain to the successor once it is translated (or, for a hot back edge,
        to the superblock of its loop); until then hand the trampoline the successor's current tier."""
        uses = 0
        hot = self.hot

        def stub(a: int, l: int, n: int) -> tuple[Any, int, int, int]:
            nonlocal uses
            if loop:
                uses += 1
                if uses >= hot:
                    sb = self.superblock(target)
                    if sb is not None:
                        slot[name] = sb
                        self.stats.chainings += 1
                        return sb, a, l, n
            fn = self.translated.get(target)
            if fn is None:
                return self.runner(target), a, l, n
            if not loop or uses >= hot:
                slot[name] = fn
                self.stats.chainings += 1
            return fn, a, l, n

        return stub

    # ---- tier 2 ------------------------------------------------------------------------------------

    def superblock(self, head: int) -> Chained | None:
        """The loop at `head` as one function with a local back edge, or None for a loop that is not
        one straight block (its body holds another BACK7 or a HALT)."""
        if head in self.superblocks:
            return self.superblocks[head]
        t0 = time.perf_counter_ns()
        stop = block_end(self.code, head)
        sb: Chained | None = None
        if self.code[stop - 1] == BACK7 and back_target(stop - 1) == head:
            sb = self._compile_loop(head, stop)
        self.superblocks[head] = sb
        self.stats.translate_ns += time.perf_counter_ns() - t0
        return sb

    def _compile_loop(self, head: int, stop: int) -> Chained:
        eff = fold(self.code, head, stop)
        # Without a SETL in the body every iteration lowers L by exactly one, so the iterations run are
        # L on entry minus L on exit; with one, they are counted.
        counted = eff.l is not None
        lines = ["def block(a, l, n):", "    i = 0" if counted else "    l0 = l", "    while True:"]
        for _ in range(self.unroll):
            lines += eff.lines("        ")
            if counted:
                lines.append("        i += 1")
            lines.append("        if l <= 0: break")
        done = "i" if counted else "(l0 - l)"
        lines.append(f"    return NEXT, a, l, n + {eff.size} * {done}")
        ns: dict[str, Any] = {}
        ns["NEXT"] = self._exit(stop, ns, "NEXT", loop=False)
        sb: Chained = _compile("\n".join(lines) + "\n", f"<superblock {head}>", ns, self.stats)
        self.stats.superblocks += 1
        self.stats.folded_away += eff.dropped * self.unroll
        return sb


def run(code: bytes, a: int, l: int, *, threshold: int = 8, hot: int = 16, unroll: int = 4) -> Result:
    tiers = Tiers(code, threshold=threshold, hot=hot, unroll=unroll)
    fn: Callable[[int, int, int], tuple[Any, int, int, int]] | None = tiers.runner(0)
    n = 0
    while fn is not None:
        fn, a, l, n = fn(a, l, n)
    stats = tiers.stats.as_dict()
    stats["tier0_blocks"] = len(tiers.cold)
    stats["interpreted"] = tiers.interpreted
    return Result(a=a, l=l, executed=n, stats=stats)
