"""Binary translation of guest blocks to Python code objects built with compile().

A block runs from an entry IP to the first BACK7 or HALT (or, for pretranslation, to the next
leader). Its translation is one Python function whose body is the folded effect (see fold.py) and
whose exits either return the next guest IP to a dispatcher (`unchained`) or return the successor's
function itself through a patchable slot (`chained`). Every translation's cost is timed and counted,
because "when does translation pay off" is the lab's first question.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vmlab.isa.engines.fold import Effect, fold
from vmlab.isa.machine import BACK7, HALT, back_target

# An unchained block: (a, l, n) -> (next_ip or -1, a, l, n).
Block = Callable[[int, int, int], tuple[int, int, int, int]]
# A chained block: (a, l, n) -> (next block or None at HALT, a, l, n).
Chained = Callable[[int, int, int], tuple[Any, int, int, int]]


@dataclass
class TranslationStats:
    blocks_translated: int = 0
    superblocks: int = 0
    chainings: int = 0
    code_bytes: int = 0
    source_bytes: int = 0
    translate_ns: int = 0
    folded_away: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {
            "blocks_translated": self.blocks_translated,
            "superblocks": self.superblocks,
            "chainings": self.chainings,
            "code_bytes": self.code_bytes,
            "source_bytes": self.source_bytes,
            "translate_ns": self.translate_ns,
            "folded_away": self.folded_away,
            **self.extra,
        }


def block_end(code: bytes, start: int, leaders: frozenset[int] | None = None) -> int:
    """Index one past the block starting at `start`: after the first BACK7/HALT or before a leader."""
    i = start
    while True:
        op = code[i]
        i += 1
        if op in (BACK7, HALT):
            return i
        if leaders is not None and i in leaders:
            return i


def leaders_of(code: bytes) -> frozenset[int]:
    """Static basic-block leaders: the entry, every BACK7 target and every instruction after a jump/HALT."""
    out = {0}
    for i, op in enumerate(code):
        if op == BACK7:
            out.add(back_target(i))
        if op in (BACK7, HALT) and i + 1 < len(code):
            out.add(i + 1)
    return frozenset(out)


def _compile(source: str, name: str, namespace: dict[str, Any], stats: TranslationStats) -> Any:
    exec(compile(source, name, "exec"), namespace)
    fn = namespace["block"]
    stats.code_bytes += len(fn.__code__.co_code)
    stats.source_bytes += len(source)
    return fn


def unchained_source(eff: Effect, start: int) -> str:
    stop = start + eff.size
    lines = ["def block(a, l, n):", *eff.lines()]
    if eff.end == BACK7:
        lines.append(f"    if l > 0: return {back_target(stop - 1)}, a, l, n + {eff.size}")
        lines.append(f"    return {stop}, a, l, n + {eff.size}")
    elif eff.end == HALT:
        lines.append(f"    return -1, a, l, n + {eff.size}")
    else:
        lines.append(f"    return {stop}, a, l, n + {eff.size}")
    return "\n".join(lines) + "\n"


def translate_unchained(
    code: bytes, start: int, stats: TranslationStats, leaders: frozenset[int] | None = None
) -> Block:
    """One block → one function returning the next IP (the dispatcher looks it up)."""
    t0 = time.perf_counter_ns()
    eff = fold(code, start, block_end(code, start, leaders))
    fn: Block = _compile(unchained_source(eff, start), f"<block {start}>", {}, stats)
    stats.blocks_translated += 1
    stats.folded_away += eff.dropped
    stats.translate_ns += time.perf_counter_ns() - t0
    return fn


class ChainingTranslator:
    """Translations whose exits are slots in the block's own globals, patched to point at successors.

    An exit starts out bound to a stub; the first time it is taken the stub finds (or translates) the
    successor, rebinds the slot to the successor's function — a chaining — and hands that function to
    the trampoline. From then on the exit returns the successor directly: no translation-cache lookup,
    no IP to decode. `hot` > 0 makes taken BACK7 exits count their uses and, once hot, link to a
    superblock of the loop (the loop body unrolled `unroll` times) instead of the plain block.
    """

    def __init__(self, code: bytes, *, hot: int = 0, unroll: int = 2) -> None:
        self.code = code
        self.hot = hot
        self.unroll = max(1, unroll)
        self.stats = TranslationStats()
        self.cache: dict[int, Chained] = {}
        self.superblocks: dict[int, Chained | None] = {}

    def block(self, start: int) -> Chained:
        fn = self.cache.get(start)
        if fn is None:
            fn = self.cache[start] = self._translate(start)
        return fn

    def _stub(self, target: int, slot: dict[str, Any], name: str) -> Chained:
        def stub(a: int, l: int, n: int) -> tuple[Any, int, int, int]:  # noqa: E741
            fn = self.block(target)
            slot[name] = fn
            self.stats.chainings += 1
            return fn, a, l, n

        return stub

    def _hot_stub(self, target: int, slot: dict[str, Any], name: str) -> Chained:
        uses = 0

        def stub(a: int, l: int, n: int) -> tuple[Any, int, int, int]:  # noqa: E741
            nonlocal uses
            uses += 1
            if uses < self.hot:
                return self.block(target), a, l, n  # not hot yet: stay unchained, keep counting
            fn = self.superblock(target) or self.block(target)
            slot[name] = fn
            self.stats.chainings += 1
            return fn, a, l, n

        return stub

    def _translate(self, start: int) -> Chained:
        t0 = time.perf_counter_ns()
        eff = fold(self.code, start, block_end(self.code, start))
        stop = start + eff.size
        lines = ["def block(a, l, n):", *eff.lines()]
        ns: dict[str, Any] = {}
        if eff.end == BACK7:
            lines.append(f"    if l > 0: return TAKEN, a, l, n + {eff.size}")
            lines.append(f"    return NEXT, a, l, n + {eff.size}")
            make = self._hot_stub if self.hot > 0 else self._stub
            ns["TAKEN"] = make(back_target(stop - 1), ns, "TAKEN")
            ns["NEXT"] = self._stub(stop, ns, "NEXT")
        else:  # HALT: chained blocks always end at a jump or HALT
            lines.append(f"    return None, a, l, n + {eff.size}")
        fn: Chained = _compile("\n".join(lines) + "\n", f"<block {start}>", ns, self.stats)
        self.stats.blocks_translated += 1
        self.stats.folded_away += eff.dropped
        self.stats.translate_ns += time.perf_counter_ns() - t0
        return fn

    def superblock(self, target: int) -> Chained | None:
        """The loop starting at `target`, unrolled: only for loops whose body is one straight block."""
        if target in self.superblocks:
            return self.superblocks[target]
        t0 = time.perf_counter_ns()
        stop = block_end(self.code, target)
        sb: Chained | None = None
        if self.code[stop - 1] == BACK7 and back_target(stop - 1) == target:
            eff = fold(self.code, target, stop)
            lines = ["def block(a, l, n):"]
            for i in range(1, self.unroll + 1):
                lines += eff.lines()
                lines.append(f"    if l <= 0: return NEXT, a, l, n + {eff.size * i}")
            lines.append(f"    return AGAIN, a, l, n + {eff.size * self.unroll}")
            ns: dict[str, Any] = {}
            ns["NEXT"] = self._stub(stop, ns, "NEXT")
            sb = _compile("\n".join(lines) + "\n", f"<superblock {target}>", ns, self.stats)
            ns["AGAIN"] = sb  # the back edge chained to the superblock itself
            self.stats.chainings += 1
            self.stats.superblocks += 1
            self.stats.folded_away += eff.dropped * self.unroll
        self.superblocks[target] = sb
        self.stats.translate_ns += time.perf_counter_ns() - t0
        return sb
