"""Parsers for what HotSpot prints: our workloads' lines, PrintCompilation, PrintInlining,
PrintFlagsFinal, -Xlog:gc and -Xlog:class+load. Formats as OpenJDK 17 prints them (compileTask.cpp,
jvmFlag.cpp, gcTraceTime, classLoader logging); the fixtures in tests/unit/hllvm/data are real output.

A parser never guesses: a line it does not recognise is skipped, and the caller decides whether "no
recognised line at all" means the JVM speaks another format (UnexpectedJvmOutput).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

# ---- our workloads: "VMLAB rep=3 iters=1000000 ns=1203456" ------------------------------------

_REP = re.compile(
    r"^VMLAB rep=(?P<rep>\d+)(?: kinds=(?P<kinds>\d+))? iters=(?P<iters>\d+) ns=(?P<ns>\d+)\s*$"
)
_CHECKSUM = re.compile(r"^VMLAB checksum=(-?\d+)\s*$")


@dataclass(frozen=True)
class Rep:
    rep: int
    iters: int
    ns: int
    kinds: int | None = None

    @property
    def ns_per_iter(self) -> float:
        return self.ns / self.iters


def parse_reps(text: str) -> list[Rep]:
    reps = []
    for line in text.splitlines():
        m = _REP.match(line)
        if m:
            kinds = m.group("kinds")
            reps.append(
                Rep(int(m["rep"]), int(m["iters"]), int(m["ns"]), int(kinds) if kinds is not None else None)
            )
    return reps


def parse_checksum(text: str) -> int | None:
    for line in text.splitlines():
        m = _CHECKSUM.match(line)
        if m:
            return int(m.group(1))
    return None


# ---- -XX:+PrintCompilation -----------------------------------------------------------------------
# CompileTask::print: "%7d " ms since start, "%4d " compile id, five attribute columns
# ('%' OSR, 's' synchronized, '!' has exception handlers, 'b' blocking, 'n' native wrapper),
# the tier when TieredCompilation is on, the method, " @ bci" for OSR, "(N bytes)" or "(native)",
# and a trailing message such as "made not entrant".

_COMPILE = re.compile(
    r"^\s*(?P<ts>\d+)\s+(?P<id>\d+)\s(?P<attrs>[%s!bn ]{5})\s"
    r"(?:(?P<tier>[0-4-])\s)?\s*"
    r"(?P<method>[^\s@()]+(?:\([^)\s]*\)\S*)?)"
    r"(?: @ (?P<bci>\d+))?\s+\((?:(?P<size>\d+) bytes|native)\)(?P<rest>.*)$"
)


@dataclass(frozen=True)
class CompileEvent:
    ts_ms: int
    compile_id: int
    osr: bool
    synchronized: bool
    exception_handler: bool
    blocking: bool
    native: bool
    tier: int | None  # None when TieredCompilation is off (C2 alone prints no tier)
    method: str
    osr_bci: int | None
    size: int | None  # bytecode size; None for native wrappers
    note: str  # "made not entrant", "made zombie", "(static)", "COMPILE SKIPPED: ..." or ""

    @property
    def made_not_entrant(self) -> bool:
        return "made not entrant" in self.note

    @property
    def is_compile(self) -> bool:
        """A compilation, not a later state change of an existing nmethod."""
        return not self.made_not_entrant and "made zombie" not in self.note


def parse_print_compilation(text: str) -> list[CompileEvent]:
    events = []
    for line in text.splitlines():
        m = _COMPILE.match(line)
        if not m:
            continue
        attrs = m["attrs"]
        tier = m["tier"]
        events.append(
            CompileEvent(
                ts_ms=int(m["ts"]),
                compile_id=int(m["id"]),
                osr=attrs[0] == "%",
                synchronized=attrs[1] == "s",
                exception_handler=attrs[2] == "!",
                blocking=attrs[3] == "b",
                native=attrs[4] == "n",
                tier=int(tier) if tier not in (None, "-") else None,
                method=m["method"],
                osr_bci=int(m["bci"]) if m["bci"] is not None else None,
                size=int(m["size"]) if m["size"] is not None else None,
                note=m["rest"].strip(),
            )
        )
    return events


@dataclass(frozen=True)
class JitSummary:
    """What happened to one method: first compile per tier, OSR compiles per tier, deoptimizations."""

    method: str
    first_compile_ms: dict[str, int]  # tier ("1".."4", or "c2" without tiers) -> ms of the first compile
    first_osr_ms: dict[str, int]
    compiles: dict[str, int]  # tier -> standard compilations
    osr: dict[str, int]  # tier -> OSR compilations
    not_entrant: int  # nmethods of this method made not entrant (deoptimized or replaced)


def _tier_key(ev: CompileEvent) -> str:
    return str(ev.tier) if ev.tier is not None else "c2"


def summarize_method(events: Iterable[CompileEvent], method: str) -> JitSummary:
    first: dict[str, int] = {}
    first_osr: dict[str, int] = {}
    compiles: dict[str, int] = {}
    osr: dict[str, int] = {}
    not_entrant = 0
    for ev in events:
        if ev.method != method:
            continue
        if ev.made_not_entrant:
            not_entrant += 1
            continue
        if not ev.is_compile or "COMPILE SKIPPED" in ev.note:
            continue
        key = _tier_key(ev)
        if ev.osr:
            osr[key] = osr.get(key, 0) + 1
            first_osr.setdefault(key, ev.ts_ms)
        else:
            compiles[key] = compiles.get(key, 0) + 1
            first.setdefault(key, ev.ts_ms)
    return JitSummary(method, first, first_osr, compiles, osr, not_entrant)


# ---- -XX:+PrintFlagsFinal ------------------------------------------------------------------------
#      intx Tier3InvocationThreshold                 = 200                          {product} {default}

_FLAG = re.compile(
    r"^\s*(?P<type>\w+)\s+(?P<name>\w+)\s+:?=\s*(?P<value>.*?)\s+\{(?P<kind>[^}]*)\}(?:\s+\{(?P<origin>[^}]*)\})?\s*$"
)


@dataclass(frozen=True)
class Flag:
    type: str
    name: str
    value: str
    kind: str
    origin: str

    def as_number(self) -> int | float | bool | str:
        if self.type == "bool":
            return self.value == "true"
        try:
            return int(self.value)
        except ValueError:
            try:
                return float(self.value)
            except ValueError:
                return self.value


def parse_flags_final(text: str) -> dict[str, Flag]:
    flags = {}
    for line in text.splitlines():
        m = _FLAG.match(line)
        if m:
            flags[m["name"]] = Flag(m["type"], m["name"], m["value"], m["kind"], m["origin"] or "")
    return flags


THRESHOLD_FLAGS = (
    "TieredCompilation",
    "TieredStopAtLevel",
    "CompileThreshold",
    "Tier3InvocationThreshold",
    "Tier3MinInvocationThreshold",
    "Tier3CompileThreshold",
    "Tier3BackEdgeThreshold",
    "Tier4InvocationThreshold",
    "Tier4MinInvocationThreshold",
    "Tier4CompileThreshold",
    "Tier4BackEdgeThreshold",
    "OnStackReplacePercentage",
    "InterpreterProfilePercentage",
    "ReservedCodeCacheSize",
)


# ---- -XX:+UnlockDiagnosticVMOptions -XX:+PrintInlining -------------------------------------------
#                               @ 25   CallSite$Square::area (10 bytes)   inline (hot)
#                                \-> TypeProfile (22964/45929 counts) = CallSite$Square

_INLINE = re.compile(
    r"^(?P<indent>\s+)@ (?P<bci>\d+)\s+(?P<method>\S+) \((?P<size>\d+) bytes\)\s+(?P<msg>.*)$"
)


@dataclass(frozen=True)
class InlineDecision:
    bci: int
    method: str
    size: int
    message: str  # "inline (hot)", "virtual call", "no static binding", "callee is too large", ...
    depth: int  # nesting under the compiled method: 0 for its own call sites

    @property
    def inlined(self) -> bool:
        return self.message.startswith("inline")


def parse_print_inlining(text: str) -> list[InlineDecision]:
    """Inlining decisions; depth 0 is the compiled method's own call sites.

    Compiler threads print concurrently, so a line can be torn by another thread's output (seen in
    real logs); torn lines are skipped. The most common indentation is taken as depth 0 (30 columns
    in JDK 17, 21 and 25), and each nesting level adds two columns.

    JDK 25 prints "failed to inline: " before a refusal and puts the
    further receivers of a bimorphic call site on the same line ("inline (hot)   callee changed to
    CallSite$Rect::area (10 bytes)   inline (hot) ..."); both are read back into JDK 17's decisions.
    """
    found = []
    for line in text.splitlines():
        m = _INLINE.match(line)
        if m:
            found.append((len(m["indent"]), m))
    if not found:
        return []
    indents = Counter(i for i, _ in found)
    base = indents.most_common(1)[0][0]
    out = []
    for i, m in found:
        depth = max(0, (i - base) // 2)
        first, *more = _CALLEE_CHANGED.split(m["msg"].strip())
        out.append(InlineDecision(int(m["bci"]), m["method"], int(m["size"]), _message(first), depth))
        for part in more:
            c = _CHANGED_TO.match(part)
            if c and not c["msg"].startswith("\\->"):  # "\-> TypeProfile ...": the profile, no decision
                out.append(
                    InlineDecision(int(m["bci"]), c["method"], int(c["size"]), _message(c["msg"]), depth)
                )
    return out


_CALLEE_CHANGED = re.compile(r"\s+callee changed to\s+")
_CHANGED_TO = re.compile(r"^(?P<method>\S+) \((?P<size>\d+) bytes\)\s+(?P<msg>.*)$")


def _message(msg: str) -> str:
    msg = msg.strip()
    return msg.removeprefix("failed to inline: ").strip()


# ---- -Xlog:gc ------------------------------------------------------------------------------------
# [0.047s][info][gc] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 6M->1M(64M) 2.213ms
# [0.050s][info][gc] GC(0) Pause Young (Allocation Failure) 17M->1M(61M) 2.778ms
# [0.005s][info][gc] Using G1

_GC_USING = re.compile(r"\[gc\s*\] Using (?P<collector>.+?)\s*$")
_GC_PAUSE = re.compile(
    r"^\[(?P<uptime>[\d.]+)s\].*\[gc\s*\] GC\((?P<id>\d+)\) Pause (?P<kind>.*?)"
    r"(?: \((?P<cause>[^()]*(?:\(\))?[^()]*)\))? "
    r"(?P<before>\d+)(?P<bu>[KMG])->(?P<after>\d+)(?P<au>[KMG])\((?P<heap>\d+)(?P<hu>[KMG])\) "
    r"(?P<ms>[\d.]+)ms\s*$"
)
_UNIT_MB = {"K": 1 / 1024, "M": 1.0, "G": 1024.0}


@dataclass(frozen=True)
class GcPause:
    gc_id: int
    uptime_s: float
    kind: str  # "Young (Normal)", "Young", "Full", "Remark", ...
    cause: str  # "G1 Evacuation Pause", "Allocation Failure", "System.gc()", "" when none printed
    before_mb: float
    after_mb: float
    heap_mb: float
    pause_ms: float


def parse_gc_log(text: str) -> tuple[str | None, list[GcPause]]:
    """(collector, pauses) from -Xlog:gc (info level) output."""
    collector = None
    pauses = []
    for line in text.splitlines():
        u = _GC_USING.search(line)
        if u and collector is None:
            collector = u["collector"]
            continue
        m = _GC_PAUSE.match(line)
        if m:
            pauses.append(
                GcPause(
                    gc_id=int(m["id"]),
                    uptime_s=float(m["uptime"]),
                    kind=m["kind"].strip(),
                    cause=m["cause"] or "",
                    before_mb=int(m["before"]) * _UNIT_MB[m["bu"]],
                    after_mb=int(m["after"]) * _UNIT_MB[m["au"]],
                    heap_mb=int(m["heap"]) * _UNIT_MB[m["hu"]],
                    pause_ms=float(m["ms"]),
                )
            )
    return collector, pauses


# ---- -Xlog:class+load ----------------------------------------------------------------------------
# [0.028s][info][class,load] java.lang.Object source: shared objects file
# [0.047s][info][class,load] HotLoop source: file:/tmp/hj/

_CLASS_LOAD = re.compile(
    r"^\[(?P<uptime>[\d.]+)s\].*\[class,load\s*\] (?P<name>\S+) source: (?P<source>.+?)\s*$"
)


@dataclass(frozen=True)
class ClassLoad:
    uptime_s: float
    name: str
    source: str

    @property
    def origin(self) -> str:
        """cds (mapped from the shared archive), jrt (parsed from the runtime image), file, or other."""
        if self.source.startswith("shared objects file"):
            return "cds"
        if self.source.startswith("jrt:"):
            return "jrt"
        if self.source.startswith("file:"):
            return "file"
        return "other"


def parse_class_load(text: str) -> list[ClassLoad]:
    loads = []
    for line in text.splitlines():
        m = _CLASS_LOAD.match(line)
        if m:
            loads.append(ClassLoad(float(m["uptime"]), m["name"], m["source"]))
    return loads


# ---- the JVM's verdict on a class ----------------------------------------------------------------
# Error: Unable to initialize main class BadAddType
# Caused by: java.lang.VerifyError: Bad type on operand stack
# Exception in thread "main" java.lang.VerifyError: (class: X, method: m signature: ()V) Expecting ...

_LINK_ERROR = re.compile(
    r"(?P<error>java\.lang\.(?:VerifyError|ClassFormatError|UnsupportedClassVersionError|"
    r"NoClassDefFoundError|IncompatibleClassChangeError|LinkageError)): ?(?P<message>.*)$"
)


def link_error(stderr: str) -> tuple[str, str, str] | None:
    """(error class, message, reason) of the first linkage error in the JVM's stderr, or None.

    `reason` is the type checker's "Reason:" line (empty for the inference verifier, which puts all
    it knows in the message itself).
    """
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        m = _LINK_ERROR.search(line)
        if m:
            reason = ""
            for j in range(i + 1, min(i + 8, len(lines))):
                if lines[j].strip() == "Reason:" and j + 1 < len(lines):
                    reason = lines[j + 1].strip()
                    break
            return m["error"], m["message"].strip(), reason
    return None
