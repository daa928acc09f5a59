"""Translated blocks chained to their successors.

Each exit of a translated block is a slot that first holds a stub; when the exit is first taken the
stub patches the slot to the successor's translation (one chaining). Afterwards a block hands its
successor straight to the trampoline `f, a, l, n = f(a, l, n)`: the translation-cache lookup and the
IP dispatch are skipped. (Python cannot jump from one function into another without growing the
stack, so a two-line trampoline stands in for the direct jump a native translator patches in.)
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from vmlab.isa.engines.translate import ChainingTranslator
from vmlab.isa.machine import Result


def run(code: bytes, a: int, l: int) -> Result:
    tr = ChainingTranslator(code)
    fn = tr.block(0)
    n = 0
    while fn is not None:
        fn, a, l, n = fn(a, l, n)
    return Result(a=a, l=l, executed=n, stats=tr.stats.as_dict())
