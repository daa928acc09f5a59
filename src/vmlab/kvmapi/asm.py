"""A small two-pass x86 assembler for guest programs: enough of NASM's syntax to write the lab's guests.

Why our own: students should read and edit guest programs without installing NASM, and every encoding
here is short enough to check against the Intel manual. Supported:

    org 0x1000 / bits 16|32 / name equ expr / db, dw, dd (numbers, 'strings') / times N <stmt>
    label:   ; comments     $ = address of the statement     expressions: + - * / ( ) << >> & |
    mov, add, or, adc, sbb, and, sub, xor, cmp, test, inc, dec, push, pop, lea, not, neg, mul, div,
    shl, shr, in, out, int, jmp, call, ret, jcc (jz, jnz, ...), loop, jcxz, lidt, lgdt,
    hlt, nop, cli, sti, cld, std, cpuid, rdtsc, ud2, int3, iret, pause, lodsb/w, stosb/w, movsb/w,
    outsb/w, insb/w, with rep/repe/repne prefixes; byte/word/dword size keywords on memory operands.

Memory operands: 16-bit [bx|bp|si|di|bx+si|... + disp] and [disp]; 32-bit [reg32 + disp] and [disp].
Displacements and jumps always take their full width (disp16/rel16 or disp32/rel32) so that sizes never
depend on label values and two passes suffice; `loop` and `jcxz` are rel8 and range-checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from vmlab.errors import UsageError


class AsmError(UsageError):
    """A line the assembler cannot encode; the message names the line."""


REG8 = {n: i for i, n in enumerate(["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"])}
REG16 = {n: i for i, n in enumerate(["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"])}
REG32 = {n: i for i, n in enumerate(["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"])}
REG64 = {n: i for i, n in enumerate(["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"])}
SREG = {n: i for i, n in enumerate(["es", "cs", "ss", "ds", "fs", "gs"])}
CREG = {"cr0": 0, "cr2": 2, "cr3": 3, "cr4": 4}
SIZES = {"byte": 8, "word": 16, "dword": 32}

ALU = {"add": 0, "or": 1, "adc": 2, "sbb": 3, "and": 4, "sub": 5, "xor": 6, "cmp": 7}
GROUP3 = {"not": 2, "neg": 3, "mul": 4, "div": 6}
SHIFTS = {"shl": 4, "sal": 4, "shr": 5}
CONDITIONS = {
    "o": 0, "no": 1, "b": 2, "c": 2, "nae": 2, "nb": 3, "nc": 3, "ae": 3, "e": 4, "z": 4, "ne": 5,
    "nz": 5, "be": 6, "na": 6, "a": 7, "nbe": 7, "s": 8, "ns": 9, "p": 10, "pe": 10, "np": 11, "po": 11,
    "l": 12, "nge": 12, "ge": 13, "nl": 13, "le": 14, "ng": 14, "g": 15, "nle": 15,
}  # fmt: skip
NOARG = {
    "hlt": b"\xf4", "nop": b"\x90", "cli": b"\xfa", "sti": b"\xfb", "cld": b"\xfc", "std": b"\xfd",
    "cpuid": b"\x0f\xa2", "rdtsc": b"\x0f\x31", "ud2": b"\x0f\x0b", "int3": b"\xcc", "ret": b"\xc3",
    "iret": b"\xcf", "pause": b"\xf3\x90", "pusha": b"\x60", "popa": b"\x61",
    "lodsb": b"\xac", "stosb": b"\xaa", "movsb": b"\xa4", "outsb": b"\x6e", "insb": b"\x6c",
}  # fmt: skip
STRING_W = {"lodsw": 0xAD, "stosw": 0xAB, "movsw": 0xA5, "outsw": 0x6F, "insw": 0x6D,
            "lodsd": 0xAD, "stosd": 0xAB, "movsd": 0xA5, "outsd": 0x6F, "insd": 0x6D}  # fmt: skip
LOOPS = {"loop": 0xE2, "loope": 0xE1, "loopz": 0xE1, "loopne": 0xE0, "loopnz": 0xE0}  # else jcxz: E3
PREFIXES = {"rep": 0xF3, "repe": 0xF3, "repz": 0xF3, "repne": 0xF2, "repnz": 0xF2}
MEM16 = {
    ("bx", "si"): 0, ("bx", "di"): 1, ("bp", "si"): 2, ("bp", "di"): 3,
    ("si",): 4, ("di",): 5, ("bp",): 6, ("bx",): 7,
}  # fmt: skip


@dataclass(frozen=True)
class Reg:
    name: str
    num: int
    size: int  # 8, 16, 32; 0 for segment registers


@dataclass(frozen=True)
class Mem:
    regs: tuple[str, ...]
    disp: str | None
    size: int | None


@dataclass(frozen=True)
class Imm:
    expr: str


Operand = Reg | Mem | Imm


@dataclass(frozen=True)
class Assembled:
    code: bytes
    org: int
    bits: int
    labels: dict[str, int]


def _reg(tok: str) -> Reg | None:
    t = tok.lower()
    for table, size in ((REG8, 8), (REG16, 16), (REG32, 32), (REG64, 64)):
        if t in table:
            return Reg(t, table[t], size)
    if t in SREG:
        return Reg(t, SREG[t], 0)
    if t in CREG:
        return Reg(t, CREG[t], -1)
    return None


def _split_operands(text: str) -> list[str]:
    """Split on commas outside quotes and brackets."""
    parts, cur, quote, depth = [], "", "", 0
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur += ch
        elif ch in "[(":
            depth += 1
            cur += ch
        elif ch in "])":
            depth -= 1
            cur += ch
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if quote:
        raise ValueError("unterminated string")
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _parse_operand(text: str) -> Operand:
    t = text.strip()
    size = None
    m = re.match(r"(?i)(byte|word|dword)\s+(.*)$", t)
    if m:
        size, t = SIZES[m.group(1).lower()], m.group(2).strip()
    if t.startswith("["):
        if not t.endswith("]"):
            raise ValueError(f"unclosed memory operand {text!r}")
        inner = t[1:-1].strip()
        regs: list[str] = []
        rest: list[str] = []
        for sign, term in re.findall(r"([+-]?)\s*([^+-]+)", inner):
            r = _reg(term.strip())
            if r is not None:
                if sign == "-" or r.size == 8 or r.size == 0:
                    raise ValueError(f"register {term.strip()!r} cannot be used this way in {text!r}")
                regs.append(r.name)
            else:
                rest.append(f"{sign}{term.strip()}")
        disp = "".join(rest) or None
        return Mem(tuple(regs), disp, size)
    if size is not None:
        raise ValueError(f"size keyword on a non-memory operand {text!r}")
    r = _reg(t)
    return r if r is not None else Imm(t)


# ---- expressions ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(0x[0-9a-fA-F_]+|0b[01_]+|[0-9][0-9a-fA-F_]*h\b|\d[\d_]*|'[^']*'|\"[^\"]*\"|"
                    r"[A-Za-z_.$][\w.$]*|<<|>>|[-+*/()&|~])")  # fmt: skip


def evaluate(expr: str, lookup: Callable[[str], int]) -> int:
    """Integer expression with NASM-style literals; names resolve through `lookup` ($ included)."""
    tokens: list[str] = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read {expr[pos:]!r}")
        tokens.append(m.group(1))
        pos = m.end()
        while pos < len(expr) and expr[pos].isspace():
            pos += 1
    if not tokens:
        raise ValueError("empty expression")
    i = 0

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    def take() -> str:
        nonlocal i
        i += 1
        return tokens[i - 1]

    def atom() -> int:
        t = take()
        if t == "(":
            v = binary(0)
            if take() != ")":
                raise ValueError("missing )")
            return v
        if t in ("-", "~", "+"):
            v = atom()
            return -v if t == "-" else (~v if t == "~" else v)
        if t[0] in "'\"":
            body = t[1:-1].encode("latin-1")
            if not 1 <= len(body) <= 4:
                raise ValueError(f"character constant {t} must hold 1-4 characters")
            return int.from_bytes(body, "little")
        low = t.lower()
        if low.startswith("0x"):
            return int(low[2:].replace("_", ""), 16)
        if low.startswith("0b"):
            return int(low[2:].replace("_", ""), 2)
        if low.endswith("h") and low[0].isdigit():
            return int(low[:-1], 16)
        if t[0].isdigit():
            return int(t.replace("_", ""), 10)
        return lookup(t)

    levels = [("|",), ("&",), ("<<", ">>"), ("+", "-"), ("*", "/")]

    def binary(level: int) -> int:
        if level == len(levels):
            return atom()
        v = binary(level + 1)
        while peek() in levels[level]:
            op = take()
            w = binary(level + 1)
            if op == "+":
                v += w
            elif op == "-":
                v -= w
            elif op == "*":
                v *= w
            elif op == "/":
                if w == 0:
                    raise ValueError("division by zero")
                v //= w
            elif op == "<<":
                v <<= w
            elif op == ">>":
                v >>= w
            elif op == "&":
                v &= w
            else:
                v |= w
        return v

    value = binary(0)
    if i != len(tokens):
        raise ValueError(f"unexpected {tokens[i]!r}")
    return value


# ---- encoding ------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, bits: int, address: int, lookup: Callable[[str], int], final: bool = True) -> None:
        self.bits = bits
        self.address = address
        self.lookup = lookup
        self.final = final  # pass 2: labels are known, so ranges are checked

    def value(self, expr: str) -> int:
        return evaluate(expr, self.lookup)


def _imm(value: int, size: int) -> bytes:
    lo, hi = -(1 << (size - 1)), (1 << size) - 1
    if not lo <= value <= hi:
        raise ValueError(f"value {value:#x} does not fit in {size} bits")
    return (value & ((1 << size) - 1)).to_bytes(size // 8, "little")


def _osize_prefix(size: int, ctx: _Ctx) -> bytes:
    if size == 64:
        raise ValueError("64-bit operands are limited to mov crN and invlpg here (use 32-bit registers)")
    default = 32 if ctx.bits == 64 else ctx.bits
    if size in (16, 32) and size != default:
        return b"\x66"
    return b""


def _modrm(reg_field: int, op: Reg | Mem, ctx: _Ctx) -> bytes:
    if isinstance(op, Reg):
        return bytes([0xC0 | (reg_field << 3) | op.num])
    disp = ctx.value(op.disp) if op.disp is not None else None
    if ctx.bits == 16:
        key = tuple(sorted(op.regs, key=lambda r: MEM16_ORDER.index(r) if r in MEM16_ORDER else 9))
        if not op.regs:
            return bytes([(reg_field << 3) | 6]) + _imm(disp or 0, 16)
        if key not in MEM16:
            raise ValueError(f"[{'+'.join(op.regs)}] is not a 16-bit addressing form (use bx/bp + si/di)")
        rm = MEM16[key]
        if disp is None and key != ("bp",):
            return bytes([(reg_field << 3) | rm])
        return bytes([0x80 | (reg_field << 3) | rm]) + _imm(disp or 0, 16)
    if len(op.regs) > 1:
        raise ValueError("32-bit memory operands take one base register here")
    if not op.regs:
        if ctx.bits == 64:  # mod 00 rm 101 is RIP-relative in long mode: an absolute address needs a SIB
            return bytes([(reg_field << 3) | 4, 0x25]) + _imm(disp or 0, 32)
        return bytes([(reg_field << 3) | 5]) + _imm(disp or 0, 32)
    table, width = (REG64, 64) if ctx.bits == 64 else (REG32, 32)
    base = table.get(op.regs[0])
    if base is None:
        raise ValueError(f"[{op.regs[0]}] needs a {width}-bit register in bits {ctx.bits}")
    sib = b"\x24" if base == 4 else b""
    if disp is None and base != 5:
        return bytes([(reg_field << 3) | base]) + sib
    return bytes([0x80 | (reg_field << 3) | base]) + sib + _imm(disp or 0, 32)


MEM16_ORDER = ("bx", "bp", "si", "di")


def _mem_size(op: Mem, other: Operand | None = None) -> int:
    if op.size is not None:
        return op.size
    if isinstance(other, Reg) and other.size:
        return other.size
    raise ValueError("operand size unknown: write byte, word or dword before the memory operand")


def _rm_form(opcode8: int, rm: Reg | Mem, reg: Reg, ctx: _Ctx) -> bytes:
    """Opcode with r/m and reg operands: opcode8 for bytes, opcode8+1 for words/dwords."""
    size = reg.size
    if isinstance(rm, Reg) and rm.size != size:
        raise ValueError(f"operand sizes differ ({rm.name}, {reg.name})")
    if isinstance(rm, Mem) and rm.size is not None and rm.size != size:
        raise ValueError("memory operand size differs from the register")
    op = opcode8 if size == 8 else opcode8 + 1
    return _osize_prefix(size, ctx) + bytes([op]) + _modrm(reg.num, rm, ctx)


def _rel(ctx: _Ctx, target: str, length: int, width: int) -> bytes:
    offset = ctx.value(target) - (ctx.address + length)
    if width == 8 and not ctx.final:
        return b"\0"
    if width == 8 and not -128 <= offset <= 127:
        raise ValueError(f"jump target {target!r} is {offset} bytes away; this instruction reaches -128..127")
    return _imm(offset, width) if width == 8 else (offset & ((1 << width) - 1)).to_bytes(width // 8, "little")


def encode(mn: str, ops: list[Operand], ctx: _Ctx) -> bytes:
    mn = mn.lower()
    n = len(ops)
    if mn in NOARG and n == 0:
        return NOARG[mn]
    if mn in STRING_W and n == 0:
        size = 32 if mn.endswith("d") else 16
        return _osize_prefix(size, ctx) + bytes([STRING_W[mn]])
    if mn == "int" and n == 1 and isinstance(ops[0], Imm):
        return b"\xcd" + _imm(ctx.value(ops[0].expr), 8)
    if mn in ("out", "in") and n == 2:
        port, acc = (ops[0], ops[1]) if mn == "out" else (ops[1], ops[0])
        if not (isinstance(acc, Reg) and acc.name in ("al", "ax", "eax")):
            raise ValueError(f"{mn} moves data through al, ax or eax")
        wide = acc.size != 8
        pre = _osize_prefix(acc.size, ctx)
        if isinstance(port, Reg) and port.name == "dx":
            return pre + bytes([(0xEE if mn == "out" else 0xEC) + wide])
        if isinstance(port, Imm):
            return pre + bytes([(0xE6 if mn == "out" else 0xE4) + wide]) + _imm(ctx.value(port.expr), 8)
        raise ValueError(f"{mn} takes its port in dx or as an 8-bit number")
    if mn == "mov" and n == 2 and any(isinstance(o, Reg) and o.size == -1 for o in ops):
        dst, src = ops
        gpr = 64 if ctx.bits == 64 else 32
        if isinstance(dst, Reg) and dst.size == -1 and isinstance(src, Reg) and src.size == gpr:
            return b"\x0f\x22" + bytes([0xC0 | (dst.num << 3) | src.num])
        if isinstance(src, Reg) and src.size == -1 and isinstance(dst, Reg) and dst.size == gpr:
            return b"\x0f\x20" + bytes([0xC0 | (src.num << 3) | dst.num])
        raise ValueError(f"a control register moves to or from a {gpr}-bit register (bits {ctx.bits})")
    if mn == "invlpg" and n == 1 and isinstance(ops[0], Mem):
        return b"\x0f\x01" + _modrm(7, ops[0], ctx)
    if mn == "mov" and n == 2:
        dst, src = ops
        if isinstance(dst, Reg) and dst.size == 0:
            if not isinstance(src, Reg | Mem) or (isinstance(src, Reg) and src.size != 16):
                raise ValueError("mov to a segment register takes a 16-bit register or memory")
            return b"\x8e" + _modrm(dst.num, src, ctx)
        if isinstance(src, Reg) and src.size == 0:
            if not isinstance(dst, Reg | Mem):
                raise ValueError("bad destination for a segment register")
            return b"\x8c" + _modrm(src.num, dst, ctx)
        if isinstance(dst, Reg) and isinstance(src, Imm):
            v = ctx.value(src.expr)
            return (
                _osize_prefix(dst.size, ctx)
                + bytes([(0xB0 if dst.size == 8 else 0xB8) + dst.num])
                + _imm(v, dst.size)
            )
        if isinstance(dst, Mem) and isinstance(src, Imm):
            size = _mem_size(dst)
            return (
                _osize_prefix(size, ctx)
                + bytes([0xC6 if size == 8 else 0xC7])
                + _modrm(0, dst, ctx)
                + _imm(ctx.value(src.expr), size)
            )
        if isinstance(src, Reg) and isinstance(dst, Reg | Mem):
            return _rm_form(0x88, dst, src, ctx)
        if isinstance(dst, Reg) and isinstance(src, Mem):
            return _rm_form(0x8A, src, dst, ctx)
    if (mn in ALU or mn == "test") and n == 2:
        dst, src = ops
        if isinstance(src, Imm) and isinstance(dst, Reg | Mem):
            size = dst.size if isinstance(dst, Reg) else _mem_size(dst)
            if size == 0:
                raise ValueError(f"{mn} cannot operate on a segment register")
            v = ctx.value(src.expr)
            if mn == "test":
                return (
                    _osize_prefix(size, ctx)
                    + bytes([0xF6 if size == 8 else 0xF7])
                    + _modrm(0, dst, ctx)
                    + _imm(v, size)
                )
            return (
                _osize_prefix(size, ctx)
                + bytes([0x80 if size == 8 else 0x81])
                + _modrm(ALU[mn], dst, ctx)
                + _imm(v, size)
            )
        base = 0x84 if mn == "test" else ALU[mn] * 8
        if isinstance(src, Reg) and isinstance(dst, Reg | Mem):
            return _rm_form(base, dst, src, ctx)
        if isinstance(dst, Reg) and isinstance(src, Mem) and mn != "test":
            return _rm_form(base + 2, src, dst, ctx)
    if mn in ("inc", "dec") and n == 1:
        (op,) = ops
        if isinstance(op, Reg) and op.size in (16, 32) and ctx.bits != 64:  # 0x40-0x4f are REX in long mode
            return _osize_prefix(op.size, ctx) + bytes([(0x40 if mn == "inc" else 0x48) + op.num])
        if isinstance(op, Reg | Mem):
            size = op.size if isinstance(op, Reg) else _mem_size(op)
            return (
                _osize_prefix(size, ctx)
                + bytes([0xFE if size == 8 else 0xFF])
                + _modrm(0 if mn == "inc" else 1, op, ctx)
            )
    if mn in GROUP3 and n == 1 and isinstance(ops[0], Reg | Mem):
        op = ops[0]
        size = op.size if isinstance(op, Reg) else _mem_size(op)
        return _osize_prefix(size, ctx) + bytes([0xF6 if size == 8 else 0xF7]) + _modrm(GROUP3[mn], op, ctx)
    if mn in SHIFTS and n == 2 and isinstance(ops[0], Reg | Mem) and isinstance(ops[1], Imm):
        op = ops[0]
        size = op.size if isinstance(op, Reg) else _mem_size(op)
        return (
            _osize_prefix(size, ctx)
            + bytes([0xC0 if size == 8 else 0xC1])
            + _modrm(SHIFTS[mn], op, ctx)
            + _imm(ctx.value(ops[1].expr), 8)
        )
    if mn in ("push", "pop") and n == 1:
        (op,) = ops
        if isinstance(op, Reg) and op.size in (16, 32) and ctx.bits != 64:
            return _osize_prefix(op.size, ctx) + bytes([(0x50 if mn == "push" else 0x58) + op.num])
        if mn == "push" and isinstance(op, Imm):
            return b"\x68" + _imm(ctx.value(op.expr), min(ctx.bits, 32))
    if mn == "lea" and n == 2 and isinstance(ops[0], Reg) and isinstance(ops[1], Mem):
        return _osize_prefix(ops[0].size, ctx) + b"\x8d" + _modrm(ops[0].num, ops[1], ctx)
    if mn in ("lidt", "lgdt") and n == 1 and isinstance(ops[0], Mem):
        return b"\x0f\x01" + _modrm(3 if mn == "lidt" else 2, ops[0], ctx)
    if n == 1 and isinstance(ops[0], Imm):
        target = ops[0].expr
        w = min(ctx.bits, 32)  # long mode keeps rel32
        if mn == "jmp":
            return b"\xe9" + _rel(ctx, target, 1 + w // 8, w)
        if mn == "call":
            return b"\xe8" + _rel(ctx, target, 1 + w // 8, w)
        if mn in ("loop", "loope", "loopz", "loopne", "loopnz", "jcxz", "jecxz"):
            opcode = LOOPS.get(mn, 0xE3)
            return bytes([opcode]) + _rel(ctx, target, 2, 8)
        if mn.startswith("j") and mn[1:] in CONDITIONS:
            return bytes([0x0F, 0x80 + CONDITIONS[mn[1:]]]) + _rel(ctx, target, 2 + w // 8, w)
    shown = ", ".join(_show(o) for o in ops)
    raise ValueError(f"cannot encode '{mn} {shown}'".rstrip() + " (not in this assembler's subset)")


def _show(op: Operand) -> str:
    if isinstance(op, Reg):
        return op.name
    if isinstance(op, Imm):
        return op.expr
    return "[" + "+".join([*op.regs, *([op.disp] if op.disp else [])]) + "]"


# ---- statements ----------------------------------------------------------------------------------


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == ";" or ch == "#":
            return line[:i]
    return line


def _data(kind: str, args: str, ctx: _Ctx) -> bytes:
    width = {"db": 8, "dw": 16, "dd": 32}[kind]
    out = bytearray()
    for item in _split_operands(args):
        if len(item) >= 2 and item[0] in "'\"" and item[-1] == item[0] and (kind == "db" or len(item) > 6):
            body = item[1:-1].encode("latin-1")
            body = body.replace(b"\\n", b"\n")
            out += body if width == 8 else b"".join(_imm(c, width) for c in body)
        else:
            out += _imm(ctx.value(item), width)
    return bytes(out)


_LABEL = re.compile(r"^\s*([A-Za-z_.][\w.]*)\s*:(.*)$")
_EQU = re.compile(r"(?i)^\s*([A-Za-z_.][\w.]*)\s+equ\s+(.+)$")


def assemble(source: str, *, origin: int = 0x1000, name: str = "<program>") -> Assembled:
    """Assemble `source`; errors name the program and line, as one AsmError."""
    labels: dict[str, int] = {}
    consts: dict[str, int] = {}
    result = b""
    bits = 16
    org = origin
    first_bits: int | None = None
    for final in (False, True):
        bits, org, address = 16 if first_bits is None else first_bits, origin, origin
        out = bytearray()
        code_started = False
        for lineno, raw in enumerate(source.splitlines(), 1):
            line = _strip_comment(raw).strip()
            try:
                m = _EQU.match(line)
                if m:
                    consts[m.group(1)] = evaluate(m.group(2), _lookup(consts, labels, address, final))
                    continue
                m = _LABEL.match(line)
                if m and not re.match(r"(?i)^(byte|word|dword)\b", line):
                    label = m.group(1)
                    if not final:
                        if label in labels:
                            raise ValueError(f"label {label!r} defined twice")
                        labels[label] = address
                    line = m.group(2).strip()
                if not line:
                    continue
                repeat = 1
                m = re.match(r"(?i)^times\s+(.+?)\s+((?:db|dw|dd|[a-z]+)\b.*)$", line)
                if m:
                    repeat = evaluate(m.group(1), _lookup(consts, labels, address, True))
                    if not 0 <= repeat <= 1 << 20:
                        raise ValueError(f"times count {repeat} out of range 0..{1 << 20}")
                    line = m.group(2)
                words = line.split(None, 1)
                mn = words[0].lower()
                rest = words[1] if len(words) > 1 else ""
                if mn == "org":
                    if code_started:
                        raise ValueError("org must come before any code or data")
                    org = address = origin = evaluate(rest, _lookup(consts, labels, 0, True))
                    continue
                if mn == "bits":
                    b = int(rest.strip())
                    if b not in (16, 32, 64):
                        raise ValueError("bits takes 16, 32 or 64")
                    if first_bits is None and not code_started:
                        first_bits = b
                    bits = b
                    continue
                prefix = b""
                if mn in PREFIXES:
                    prefix = bytes([PREFIXES[mn]])
                    words = rest.split(None, 1)
                    if not words:
                        raise ValueError(f"{mn} needs an instruction after it")
                    mn = words[0].lower()
                    rest = words[1] if len(words) > 1 else ""
                for _ in range(repeat):
                    ctx = _Ctx(bits, address, _lookup(consts, labels, address, final), final)
                    if mn in ("db", "dw", "dd"):
                        chunk = _data(mn, rest, ctx)
                    else:
                        ops = [_parse_operand(o) for o in _split_operands(rest)]
                        chunk = prefix + encode(mn, ops, ctx)
                    out += chunk
                    address += len(chunk)
                    code_started = True
            except (ValueError, KeyError) as e:
                raise AsmError(f"{name} line {lineno}: {e}: {raw.strip()!r}") from None
            if address - org > 0x80000:
                raise AsmError(f"{name}: program larger than 512 KiB")
        result = bytes(out)
    return Assembled(result, org, first_bits or 16, labels)


def _lookup(
    consts: dict[str, int], labels: dict[str, int], address: int, final: bool
) -> Callable[[str], int]:
    """A name resolver bound to one statement's address ($) and pass."""
    return lambda sym: _resolve(sym, consts, labels, address, final)


def _resolve(sym: str, consts: dict[str, int], labels: dict[str, int], address: int, final: bool) -> int:
    if sym == "$":
        return address
    if sym in consts:
        return consts[sym]
    if sym in labels:
        return labels[sym]
    if final:
        raise ValueError(f"unknown name {sym!r}")
    return 0
