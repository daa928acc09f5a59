"""The homework's program generator and the four scenarios with their oracles.

The generator is specified bit for bit (a 31-bit LCG), so the same parameters give the same program in
every implementation, and the oracles (final A, executed instructions) can be compared exactly.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from vmlab.errors import UsageError
from vmlab.isa.machine import BACK7, HALT, SETL, Program

MIN_SIZE = 8
# Bumped whenever generate() could give other bytes for the same parameters; recorded in p.json.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Scenario:
    number: int
    size: int
    probs: tuple[int, int, int, int, int]
    seed: int = 1
    final_a: int = 0
    executed: int = 0
    initial_a: int = 6
    initial_l: int = 7

    @property
    def name(self) -> str:
        return "SV" if self.number == VARIANT else f"S{self.number}"


VARIANT = 0  # the number of a student's own program (lab.toml [variants]): reported as SV
VARIANT_PROBS = (1, 9, 1, 5, 5)  # the opcode mix of S3 and S4


def variant_scenario(size: int, seed: int) -> tuple[Scenario, Program]:
    """A student's own program (the homework generator with their seed) and its oracle, from the
    reference interpreter: like S3, but every student's differs. The lab's seeds are vetted to halt
    within a few hundred thousand instructions (labs/isa-emulation/lab.toml [variants])."""
    from vmlab.isa.reference import run_reference

    prog = generate(size, seed, VARIANT_PROBS)
    want = run_reference(prog)
    s = Scenario(VARIANT, size, VARIANT_PROBS, seed, want.a, want.executed, prog.a, prog.l)
    return s, Program(code=prog.code, a=prog.a, l=prog.l, name=s.name)


SCENARIOS: dict[int, Scenario] = {
    1: Scenario(1, 10_000, (0, 1, 0, 0, 0), final_a=30003, executed=10_000),
    2: Scenario(2, 10_000, (1, 1, 1, 0, 0), final_a=-1, executed=10_000),
    3: Scenario(3, 10_000, (1, 9, 1, 5, 5), final_a=95, executed=719_821),
    4: Scenario(4, 50_000, (1, 9, 1, 5, 5), final_a=138, executed=21_516_018),
}


def scenario(number: int) -> Scenario:
    try:
        return SCENARIOS[number]
    except KeyError:
        raise UsageError(f"no scenario {number} (known: {', '.join(str(n) for n in SCENARIOS)})") from None


def parse_probs(text: str) -> tuple[int, int, int, int, int]:
    """'1/9/1/5/5' → (1, 9, 1, 5, 5): relative probabilities of opcodes CLRA..BACK7."""
    parts = text.replace(",", "/").split("/")
    if len(parts) != 5:
        raise UsageError(
            f"probabilities {text!r}: expected five numbers for opcodes 1..5",
            hint="for example --probs 1/9/1/5/5",
        )
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(
            f"probabilities {text!r}: not all are integers", hint="for example --probs 1/9/1/5/5"
        ) from None
    return check_params(MIN_SIZE, values)[1]


def check_params(size: int, probs: Sequence[int]) -> tuple[int, tuple[int, int, int, int, int]]:
    """Refuse parameters outside the generator's domain, naming the problem and the fix."""
    if size < MIN_SIZE:
        raise UsageError(f"size {size} is too small: the generator needs at least {MIN_SIZE} instructions")
    if len(probs) != 5:
        raise UsageError(f"expected five probabilities (opcodes 1..5), got {len(probs)}")
    p = tuple(int(x) for x in probs)
    if any(x < 0 for x in p):
        raise UsageError(f"probabilities {'/'.join(map(str, p))}: negative values are not probabilities")
    if sum(p) == 0:
        raise UsageError(
            "probabilities are all zero: at least one opcode needs a chance", hint="--probs 1/9/1/5/5"
        )
    if p[4] > 0 and p[0] + p[1] + p[2] == 0:
        # BACK7 cannot sit at positions < 7 and forces SETLs before it to be redrawn as CLRA/INC3A/DECA:
        # with none of those possible the generator would draw forever.
        raise UsageError(
            f"probabilities {'/'.join(map(str, p))}: BACK7 needs CLRA, INC3A or DECA to be possible too",
            hint="give opcode 1, 2 or 3 a non-zero probability",
        )
    return size, (p[0], p[1], p[2], p[3], p[4])


def _lcg(seed: int) -> Iterator[int]:
    v = seed & 0xFFFFFFFF
    while True:
        v = (v * 1103515245 + 12345) & 0x7FFFFFFF
        yield v


def generate(size: int, seed: int, probs: Sequence[int]) -> Program:
    """The homework generator, step by step as specified (see the module docstring of the lab)."""
    size, p = check_params(size, probs)
    draws = _lcg(seed)
    a = next(draws) & 7
    l = next(draws) & 7
    ps = [p[0]]
    for x in p[1:]:
        ps.append(ps[-1] + x)
    total = ps[4]

    def opcode() -> int:
        r = next(draws) % total
        for i in range(4):
            if r < ps[i]:
                return i + 1
        return 5

    code = bytearray(size)
    pos = 0
    while pos < size:
        op = opcode()
        if op == BACK7:
            if pos < 7:
                continue
            for j in range(pos - 6, pos):
                if code[j] == SETL:
                    new = opcode()
                    while new in (SETL, BACK7):
                        new = opcode()
                    code[j] = new
        code[pos] = op
        pos += 1
    code[size - 1] = HALT
    return Program(code=bytes(code), a=a, l=l, name=f"size{size}-seed{seed}-{'-'.join(map(str, p))}")


def scenario_program(number: int) -> Program:
    s = scenario(number)
    prog = generate(s.size, s.seed, s.probs)
    return Program(code=prog.code, a=prog.a, l=prog.l, name=s.name)


def write_program(program: Program, path: Path, *, seed: int, size: int, probs: Sequence[int]) -> Path:
    """Write the bytes to `path` and what made them (and the initial A, L) to its sidecar p.json."""
    import hashlib
    import json

    from vmlab.isa.machine import sidecar

    path.write_bytes(program.code)
    side = sidecar(path)
    info = {
        "generator": "vmlab.isa.gen",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "probs": list(probs),
        "a": program.a,
        "l": program.l,
        "sha256": hashlib.sha256(program.code).hexdigest(),
    }
    side.write_text(json.dumps(info, indent=2) + "\n")
    return side
