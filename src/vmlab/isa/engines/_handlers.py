"""Handler factories for the threaded-code analogues, one per opcode sequence, built once per process.

A handler is specialised for its operands: the next IP and the BACK7 target are closure constants
(that is what predecoding buys), so running it never looks at the byte array again. The source of each
factory is generated from the folded effect of its opcodes (fold.py), which is how a superinstruction
for any pair comes for free: the interpreter's author "writes" it once, no matter which program runs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from vmlab.isa.engines.fold import fold
from vmlab.isa.machine import BACK7, HALT

Factory = Callable[[int, int], Callable[..., Any]]


@cache
def factory(ops: tuple[int, ...], counting: bool) -> Factory:
    """make(next_ip, target) → handler for `ops`; counting handlers also add len(ops) to n."""
    eff = fold(bytes(ops), 0, len(ops))
    params = "a, l, n" if counting else "a, l"
    count = f", n + {len(ops)}" if counting else ""
    lines = ["def make(NXT, TGT):", f"    def handler({params}):"]
    lines += eff.lines("        ")
    if eff.end == BACK7:
        lines.append(f"        if l > 0: return TGT, a, l{count}")
        lines.append(f"        return NXT, a, l{count}")
    elif eff.end == HALT:
        lines.append(f"        return -1, a, l{count}")
    else:
        lines.append(f"        return NXT, a, l{count}")
    lines.append("    return handler")
    ns: dict[str, Any] = {}
    exec(compile("\n".join(lines) + "\n", f"<handler {ops}>", "exec"), ns)
    make: Factory = ns["make"]
    return make
