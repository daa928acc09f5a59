"""Parsers for what Valgrind and QEMU print: lackey's counts, `--stats=yes`, the observer, `-d` logs.

Valgrind prefixes its lines with `==PID==` (user messages) or `--PID--` (debug/statistics); numbers use
thousands separators (`127,679`). A parser that finds none of its lines raises ParseError instead of
returning zeros, so a missing figure is never mistaken for a measured zero.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from vmlab.errors import BackendError

_PREFIX = r"^(?:==|--)\d+(?:==|--)\s*"


class ParseError(BackendError):
    """Tool output without the lines a parser needs (a crash, a wrong tool, a changed format)."""


def _num(text: str) -> int:
    return int(text.replace(",", ""))


def _find(pattern: str, text: str) -> re.Match[str] | None:
    return re.search(_PREFIX + pattern, text, re.MULTILINE)


@dataclass(frozen=True)
class LackeyCounts:
    """`--tool=lackey --basic-counts=yes`: executed guest code, counted by one helper per instruction."""

    calls_to_main: int
    jccs: int
    jccs_taken: int
    sbs_entered: int
    sbs_completed: int
    guest_instrs: int
    ir_stmts: int
    exit_code: int | None

    @property
    def instrs_per_sb(self) -> float:
        return self.guest_instrs / self.sbs_entered if self.sbs_entered else 0.0

    @property
    def ir_per_instr(self) -> float:
        return self.ir_stmts / self.guest_instrs if self.guest_instrs else 0.0

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, int)}


def parse_lackey(text: str) -> LackeyCounts:
    """Lackey's summary block (its `Ratios:` lines are rounded; the ratios are recomputed exactly)."""
    fields = {
        "calls_to_main": r"Counted ([\d,]+) calls? to main\(\)",
        "jccs": r"total:\s+([\d,]+)",
        "jccs_taken": r"taken:\s+([\d,]+)",
        "sbs_entered": r"SBs entered:\s+([\d,]+)",
        "sbs_completed": r"SBs completed:\s+([\d,]+)",
        "guest_instrs": r"guest instrs:\s+([\d,]+)",
        "ir_stmts": r"IRStmts:\s+([\d,]+)",
    }
    values: dict[str, int] = {}
    for key, pattern in fields.items():
        m = _find(pattern, text)
        if m is None:
            raise ParseError(
                f"lackey output has no '{pattern.split(chr(92))[0].strip()}' line",
                hint="run valgrind with --tool=lackey --basic-counts=yes and read its stderr (or --log-file)",
            )
        values[key] = _num(m.group(1))
    m = _find(r"Exit code:\s+(-?\d+)", text)
    return LackeyCounts(**values, exit_code=int(m.group(1)) if m else None)


@dataclass(frozen=True)
class VgStats:
    """`--stats=yes`: what the core did to run the guest (translation, code cache, dispatch)."""

    guest_insns_translated: int
    translations: int  # superblocks translated ("traces"); equals transtab new
    uncond_chased: int
    cond_chased: int
    guest_bytes: int  # guest code bytes translated
    host_bytes: int  # host code bytes produced (instrumentation included)
    tt_lookups: int
    fast_cache_updates: int
    flushes: int
    event_checks: int
    indir_transfers: int
    indir_misses: int
    dumped: int
    discarded: int

    @property
    def expansion(self) -> float:
        """Host bytes per guest byte: what translation plus instrumentation cost in code size."""
        return self.host_bytes / self.guest_bytes if self.guest_bytes else 0.0

    @property
    def insns_per_translation(self) -> float:
        return self.guest_insns_translated / self.translations if self.translations else 0.0

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, int)}


def parse_stats(text: str) -> VgStats:
    """The `translate:`, `tt/tc:`, `transtab:` and `scheduler:` lines of `--stats=yes`."""
    patterns = {
        "translate": r"translate:\s+([\d,]+) guest insns, ([\d,]+) traces, ([\d,]+) uncond chased, "
        r"([\d,]+) cond chased",
        "lookups": r"tt/tc:\s+([\d,]+) tt lookups",
        "fast": r"tt/tc:\s+([\d,]+) fast-cache updates, ([\d,]+) flushes",
        "new": r"transtab: new\s+([\d,]+) \(([\d,]+) -> ([\d,]+);",
        "dumped": r"transtab: dumped\s+([\d,]+)",
        "discarded": r"transtab: discarded\s+([\d,]+)",
        "events": r"scheduler:\s+([\d,]+) event checks",
        "indir": r"scheduler:\s+([\d,]+) indir transfers, ([\d,]+) misses",
    }
    m: dict[str, re.Match[str]] = {}
    for key, pattern in patterns.items():
        found = _find(pattern, text)
        if found is None:
            raise ParseError(
                f"valgrind --stats=yes output has no '{key}' statistics line",
                hint="run valgrind with --stats=yes and keep its stderr (or --log-file)",
            )
        m[key] = found
    t = m["translate"]
    return VgStats(
        guest_insns_translated=_num(t.group(1)),
        translations=_num(t.group(2)),
        uncond_chased=_num(t.group(3)),
        cond_chased=_num(t.group(4)),
        guest_bytes=_num(m["new"].group(2)),
        host_bytes=_num(m["new"].group(3)),
        tt_lookups=_num(m["lookups"].group(1)),
        fast_cache_updates=_num(m["fast"].group(1)),
        flushes=_num(m["fast"].group(2)),
        event_checks=_num(m["events"].group(1)),
        indir_transfers=_num(m["indir"].group(1)),
        indir_misses=_num(m["indir"].group(2)),
        dumped=_num(m["dumped"].group(1)),
        discarded=_num(m["discarded"].group(1)),
    )


@dataclass(frozen=True)
class ObserverCounts:
    """The observer tool's three lines (labs/process-vm/skeleton/observer/ob_main.c)."""

    translated: int
    sbs_entered: int
    guest_instrs: int

    def counts(self) -> dict[str, int]:
        return asdict(self)


def parse_observer(text: str) -> ObserverCounts:
    values: dict[str, int] = {}
    for key, label in (
        ("translated", "superblocks translated"),
        ("sbs_entered", "superblocks entered"),
        ("guest_instrs", "guest instrs"),
    ):
        m = _find(rf"observer: {label}:\s+([\d,]+)", text)
        if m is None:
            raise ParseError(
                f"the observer printed no 'observer: {label}: N' line",
                hint="print it with VG_(umsg) in ob_fini (see labs/process-vm/skeleton/observer/ob_main.c)",
            )
        values[key] = _num(m.group(1))
    return ObserverCounts(**values)


@dataclass(frozen=True)
class QemuLog:
    """Counts from a qemu-user `-d in_asm,out_asm,exec,nochain -D FILE` log (any subset of items)."""

    blocks: int  # translated blocks (IN: sections)
    guest_instrs: int  # guest instructions translated
    guest_bytes: int
    host_bytes: int  # sum of OUT: [size=N] (0 without out_asm)
    out_blocks: int
    executions: int  # Trace lines (TB executions seen by the main loop; all of them under nochain)

    @property
    def instrs_per_block(self) -> float:
        return self.guest_instrs / self.blocks if self.blocks else 0.0

    @property
    def expansion(self) -> float:
        return self.host_bytes / self.guest_bytes if self.guest_bytes else 0.0

    def counts(self) -> dict[str, int]:
        return asdict(self)


# An instruction line of in_asm: address, then either x86 byte pairs or one 32-bit aarch64 word, then
# the mnemonic; a line with bytes but no mnemonic continues a long instruction's bytes.
_INSN = re.compile(r"^0x[0-9a-f]+:\s+([0-9a-f]{8}|(?:[0-9a-f]{2} )*[0-9a-f]{2})(?:\s{2,}(\S.*?))?\s*$")


def parse_qemu_log(text: str) -> QemuLog:
    blocks = instrs = gbytes = hbytes = out_blocks = execs = 0
    section = ""
    for line in text.splitlines():
        if line.startswith("IN:"):
            section = "in"
            blocks += 1
        elif line.startswith("OUT: [size="):
            section = "out"
            out_blocks += 1
            hbytes += int(line[len("OUT: [size=") :].split("]")[0])
        elif line.startswith("Trace "):
            execs += 1
        elif not line.strip() or line.startswith(("---", "PROLOGUE")):
            section = "" if line.startswith("PROLOGUE") else section
        elif section == "in":
            m = _INSN.match(line)
            if m:
                raw = m.group(1).split()
                gbytes += 4 if len(raw) == 1 and len(raw[0]) == 8 else len(raw)
                if m.group(2):
                    instrs += 1
    if blocks == 0 and out_blocks == 0 and execs == 0:
        raise ParseError(
            "the QEMU log has no IN:, OUT: or Trace lines", hint="run qemu-user with -d in_asm -D FILE"
        )
    return QemuLog(blocks, instrs, gbytes, hbytes, out_blocks, execs)
