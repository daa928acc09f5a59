"""The guest machine: opcodes, programs, engine results and input validation.

Registers: IP (index into the byte array, starts at 0), A (accumulator) and L (loop counter), both
32-bit signed. Engines keep A and L as Python ints without wrapping: each instruction changes A by at
most 3, so a program must execute more than 700 million instructions before A could leave 32 bits,
which no Python engine gets through in a lab session; the reference interpreter wraps anyway.
"""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmlab.errors import UsageError

HALT, CLRA, INC3A, DECA, SETL, BACK7 = 0, 1, 2, 3, 4, 5
NAMES = {HALT: "HALT", CLRA: "CLRA", INC3A: "INC3A", DECA: "DECA", SETL: "SETL", BACK7: "BACK7"}
MAX_OPCODE = BACK7
# BACK7 at position p continues at p - BACK_DISTANCE + 1: "back by 7" counted from the next IP.
BACK_DISTANCE = 7


def back_target(pos: int) -> int:
    """Where a taken BACK7 at `pos` continues: the first of the 6 instructions before it."""
    return pos + 1 - BACK_DISTANCE


@dataclass(frozen=True)
class Program:
    """A loaded guest program: the byte array and the initial registers."""

    code: bytes
    a: int = 0
    l: int = 0
    name: str = ""


@dataclass
class Result:
    """What an engine hands back: final registers, executed instructions (HALT included), statistics.

    `stats` keys every engine may fill: blocks_translated, chainings, code_bytes, translate_ns,
    superinstructions, superblocks, interpreted (instructions run by an interpreter stage).
    """

    a: int
    l: int
    executed: int
    stats: dict[str, int] = field(default_factory=dict)


def to_int32(x: int) -> int:
    """Two's-complement wrap to 32 bits, as the homework's C code stores A and L."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def validate_code(code: bytes, source: str = "program") -> None:
    """Reject byte arrays no engine may run: unknown opcodes, a BACK7 that leaves the array, no HALT."""
    if not code:
        raise UsageError(f"{source} is empty", hint="create one with 'vmlab isa gen -o FILE'")
    bad = next((i for i, b in enumerate(code) if b > MAX_OPCODE), None)
    if bad is not None:
        raise UsageError(
            f"{source}: byte {code[bad]} at offset {bad} is not an opcode (valid: 0..{MAX_OPCODE})",
            hint="a program file holds one opcode byte per instruction; create one with 'vmlab isa gen'",
        )
    early = next((i for i in range(min(len(code), BACK_DISTANCE - 1)) if code[i] == BACK7), None)
    if early is not None:
        raise UsageError(
            f"{source}: BACK7 at offset {early} would jump before the start of the program",
            hint=f"a BACK7 needs at least {BACK_DISTANCE - 1} instructions before it",
        )
    if code[-1] != HALT:
        raise UsageError(
            f"{source}: the last byte is {code[-1]}, not HALT (0), so execution would run off the end",
            hint="end the program with a 0 byte",
        )


def sidecar(path: Path) -> Path:
    """Where a program file's description lives: p.bin → p.json (written by `vmlab isa gen -o`)."""
    return path.with_suffix(".json")


def load_program(path: Path, a: int | None = None, l: int | None = None) -> Program:
    """Read a program file (raw opcode bytes) and validate it.

    Initial A and L come from the arguments when given, else from the file's sidecar (p.json beside
    p.bin, see `sidecar`), else 0: a generated program runs from the state the generator drew.
    """
    try:
        code = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"program file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"program file {path} is a directory") from None
    except OSError as e:
        raise UsageError(f"cannot read program file {path}: {e.strerror}") from None
    validate_code(code, str(path))
    if a is None or l is None:
        info = read_sidecar(path, code)
        a = a if a is not None else int(info.get("a", 0))
        l = l if l is not None else int(info.get("l", 0))
    return Program(code=code, a=a, l=l, name=path.name)


def read_sidecar(path: Path, code: bytes) -> dict[str, Any]:
    """The sidecar's fields, {} when there is none; one that describes other bytes is refused."""
    import hashlib
    import json

    side = sidecar(path)
    if not side.is_file():
        return {}
    try:
        info = json.loads(side.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(
            f"{side}: not a program description ({e})", hint=f"delete {side} or regenerate"
        ) from None
    if not isinstance(info, dict):
        raise UsageError(f"{side}: not a program description", hint=f"delete {side} or regenerate")
    if info.get("sha256") not in (None, hashlib.sha256(code).hexdigest()):
        raise UsageError(
            f"{side} describes another program than {path.name} (sha256 differs)",
            hint=f"regenerate both with 'vmlab isa gen -o {path}', or delete {side} and give --a/--l",
        )
    return info
