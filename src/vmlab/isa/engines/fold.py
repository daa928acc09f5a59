"""Straight-line effect of a run of guest instructions, folded to at most two assignments.

Inside a block without jumps, A only ever becomes "A on entry + k" (INC3A/DECA) or "a constant k"
(after a CLRA, which makes every earlier change of A dead), and only the last SETL matters for L. So
any block folds to: L (maybe) set from such an expression, A set to one, then the block's end.
Interpreters with superinstructions and the translators share this arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlab.isa.machine import BACK7, CLRA, DECA, HALT, INC3A, SETL


@dataclass(frozen=True)
class Expr:
    """A value relative to A on entry (`absolute` False: A_in + k) or a constant (True: k)."""

    absolute: bool
    k: int

    def render(self, var: str = "a") -> str:
        if self.absolute:
            return str(self.k)
        if self.k == 0:
            return var
        return f"{var} + {self.k}" if self.k > 0 else f"{var} - {-self.k}"


@dataclass(frozen=True)
class Effect:
    """What a straight-line run does: A's new value, L's new value (None: unchanged), the end."""

    a: Expr
    l: Expr | None  # noqa: E741
    size: int  # guest instructions covered, the final BACK7/HALT included
    end: int | None  # BACK7, HALT or None (falls through)
    dropped: int  # instructions whose effect folding removed (dead CLRA, merged INC3A/DECA, dead SETL)

    def lines(self, indent: str = "    ") -> list[str]:
        """Python statements applying the effect to locals a and l (BACK7's decrement included).

        L is computed before A changes because it reads A on entry.
        """
        out: list[str] = []
        if self.end == BACK7:
            out.append(f"{indent}l = {self.l.render()} - 1" if self.l is not None else f"{indent}l -= 1")
        elif self.l is not None:
            out.append(f"{indent}l = {self.l.render()}")
        if not (not self.a.absolute and self.a.k == 0):
            out.append(f"{indent}a = {self.a.render()}")
        return out


def fold(code: bytes, start: int, stop: int) -> Effect:
    """Fold code[start:stop]; a BACK7 or HALT may only be its last instruction."""
    absolute, k = False, 0
    l_expr: Expr | None = None
    end: int | None = None
    for i in range(start, stop):
        op = code[i]
        if op == INC3A:
            k += 3
        elif op == DECA:
            k -= 1
        elif op == CLRA:
            absolute, k = True, 0
        elif op == SETL:
            l_expr = Expr(absolute, k)
        elif op in (BACK7, HALT):
            if i != stop - 1:
                raise ValueError(f"{op} at {i} inside a straight-line run {start}..{stop}")
            end = op
        else:
            raise ValueError(f"byte {op} at {i} is not an opcode")
    a_expr = Expr(absolute, k)
    size = stop - start
    alu = size - (end is not None)
    statements = (0 if (not absolute and k == 0) else 1) + (l_expr is not None)
    return Effect(a=a_expr, l=l_expr, size=size, end=end, dropped=max(0, alu - statements))
