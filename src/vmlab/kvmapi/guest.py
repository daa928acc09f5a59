"""A guest program of the KVM API lab: its bytes, mode and expected exits; assembled from source, or
loaded from a student's own file (.asm/.s, .hex, .bin)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vmlab.errors import UsageError
from vmlab.kvmapi import devices as dev
from vmlab.kvmapi.asm import assemble

DEFAULT_N = 1000
MAX_N = 10_000_000


@dataclass(frozen=True)
class Program:
    name: str
    code: bytes
    description: str = ""
    bits: int = 16
    org: int = dev.LOAD_ADDR
    source: str | None = None
    expect: dict[str, int] = field(default_factory=dict)
    expect_output: str | None = None

    @property
    def entry(self) -> int:
        return self.org


def assemble_program(
    name: str, description: str, source: str, expect: dict[str, int], output: str | None = ""
) -> Program:
    a = assemble(source, name=name)
    return Program(name, a.code, description, a.bits, a.org, source, expect, output)


def from_file(path: Path, *, bits: int = 16) -> Program:
    """A student's program: .asm/.s (this assembler), .hex (hex bytes, ; or # comments) or .bin (raw)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"program file {path} does not exist") from None
    except OSError as e:
        raise UsageError(f"cannot read program file {path}: {e.strerror}") from None
    suffix = path.suffix.lower()
    name = path.name
    if suffix in (".asm", ".s"):
        try:
            source = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not UTF-8 text", hint="save the assembler file as UTF-8") from None
        a = assemble(source, name=str(path))
        if not a.code:
            raise UsageError(
                f"{path} assembles to no code", hint="write at least one instruction (end with hlt)"
            )
        return Program(name, a.code, f"assembled from {path}", a.bits, a.org, source)
    if suffix == ".hex":
        code = parse_hex(raw.decode("utf-8", "replace"), str(path))
    elif suffix == ".bin":
        code = raw
    else:
        raise UsageError(
            f"{path}: unknown program file type {suffix or '(none)'!r}",
            hint="use .asm or .s (assembler), .hex (hex bytes) or .bin (raw code)",
        )
    if not code:
        raise UsageError(
            f"{path} holds no code", hint="the guest needs at least one instruction, e.g. f4 (hlt)"
        )
    if bits not in (16, 32, 64):
        raise UsageError(
            f"--bits {bits} is not supported",
            hint="use 16 (real mode), 32 (protected mode) or 64 (long mode with paging)",
        )
    return Program(name, code, f"loaded from {path}", bits)


_HEX = re.compile(r"^(?:0x)?([0-9a-fA-F]{2})+$")


def parse_hex(text: str, name: str = "<hex>") -> bytes:
    """Whitespace-separated hex bytes ('b0 02', 'b002', '0xb0'); ';' or '#' start a comment."""
    out = bytearray()
    for lineno, line in enumerate(text.splitlines(), 1):
        body = re.split(r"[;#]", line, maxsplit=1)[0]
        for tok in body.replace(",", " ").split():
            if not _HEX.match(tok):
                raise UsageError(
                    f"{name} line {lineno}: {tok!r} is not hex bytes",
                    hint="write pairs of hex digits like 'b0 02 f4'",
                )
            out += bytes.fromhex(tok[2:] if tok.lower().startswith("0x") else tok)
    return bytes(out)
