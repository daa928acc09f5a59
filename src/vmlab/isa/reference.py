"""The reference interpreter: the plainest reading of the specification, with 32-bit wrap-around.

Every engine is compared against this one. It is written for clarity, not speed, and takes an
instruction budget so property tests can discard programs that would run for too long.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from vmlab.isa.machine import BACK7, CLRA, DECA, HALT, INC3A, SETL, Program, Result, back_target, to_int32


class BudgetExceeded(RuntimeError):
    """The program did not halt within the instruction budget."""


def _execute(code: bytes, ip: int, a: int, l: int) -> tuple[int, int, int]:
    """One instruction other than HALT: the next IP and the registers after it."""
    op = code[ip]
    if op == CLRA:
        a = 0
    elif op == INC3A:
        a = to_int32(a + 3)
    elif op == DECA:
        a = to_int32(a - 1)
    elif op == SETL:
        l = a
    elif op == BACK7:
        l = to_int32(l - 1)
        if l > 0:
            return back_target(ip), a, l
    else:
        raise ValueError(f"byte {op} at {ip} is not an opcode")
    return ip + 1, a, l


def _block_exit(code: bytes, start: int) -> int:
    """Index of the BACK7 or HALT that ends the block starting at `start`."""
    i = start
    while code[i] not in (BACK7, HALT):
        i += 1
    return i


def run_reference(program: Program, max_instructions: int | None = None) -> Result:
    code = program.code
    ip, a, l, executed = 0, to_int32(program.a), to_int32(program.l), 0
    while True:
        if max_instructions is not None and executed >= max_instructions:
            raise BudgetExceeded(f"no HALT within {max_instructions} instructions")
        executed += 1
        if code[ip] == HALT:
            return Result(a=a, l=l, executed=executed)
        ip, a, l = _execute(code, ip, a, l)


def run(code: bytes, a: int, l: int) -> Result:
    """The oracle as an engine: the lab's `oracle` step and the re-run's speed baseline time it. It is
    no task's answer (the plainest reading, with wrap-around), so the student kit ships it."""
    return run_reference(Program(code=code, a=a, l=l))


@dataclass
class BlockTrace:
    """The dynamic basic blocks of a run, read off the reference interpreter.

    A dynamic block runs from an entry IP (0, or wherever execution continues after a BACK7) to the
    first BACK7 or HALT. `entries[ip]` counts how often a block was entered at `ip`; `exits[(ip,
    taken)]` how often the block entered at `ip` left through its taken (True) or fall-through (False)
    BACK7 exit. The structural counts the translation tasks are graded on follow from these alone,
    without any translator: that is what makes them an independent oracle.
    """

    code: bytes
    entries: Counter[int] = field(default_factory=Counter)
    exits: Counter[tuple[int, bool]] = field(default_factory=Counter)

    def blocks(self, threshold: int = 0) -> int:
        """Blocks a translator translates when it interprets each block's first `threshold` entries."""
        return sum(1 for c in self.entries.values() if c > threshold)

    def chainings(self) -> int:
        """Exit slots patched by a chaining translator: every distinct (block, exit) taken at least once."""
        return len(self.exits)

    def simple_loop(self, head: int) -> bool:
        """The block entered at `head` ends at a BACK7 that jumps back to `head` itself."""
        i = _block_exit(self.code, head)
        return self.code[i] == BACK7 and back_target(i) == head

    def superblocks(self, hot: int) -> int:
        """Loops turned into superblocks when a taken exit used `hot` times forms one at its target.

        The target of the taken exit of the block at `src` is the one its BACK7 jumps to; a superblock
        is only formed for a simple loop, once per head, however many exits reach it.
        """
        heads: set[int] = set()
        for (src, taken), count in self.exits.items():
            if taken and count >= hot:
                target = back_target(_block_exit(self.code, src))
                if self.simple_loop(target):
                    heads.add(target)
        return len(heads)


def trace_blocks(program: Program) -> BlockTrace:
    """Run the reference semantics and record every dynamic block entry and exit (see BlockTrace)."""
    code = program.code
    trace = BlockTrace(code=code)
    entries, exits = trace.entries, trace.exits
    ip, a, l, start = 0, to_int32(program.a), to_int32(program.l), 0
    entries[0] += 1
    while code[ip] != HALT:
        op = code[ip]
        ip, a, l = _execute(code, ip, a, l)
        if op == BACK7:  # a block ends here; the next one starts where execution goes on
            exits[(start, l > 0)] += 1
            start = ip
            entries[ip] += 1
    return trace
