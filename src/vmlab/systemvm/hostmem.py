"""Host memory as the kernel states it: /proc/PID/smaps_rollup, /proc/PID/ksm_stat, /proc/meminfo and
the KSM counters under /sys/kernel/mm/ksm. Parsers take text (unit-tested with hand-written inputs);
readers take the path, so a test can point them at a copy.

Why PSS and USS, not RSS: once KSM merges pages, a merged page stays in the RSS of every QEMU that maps
it; PSS divides it among them and USS drops it, so only they show what sharing saved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KSM_DIR = Path("/sys/kernel/mm/ksm")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# the tunables a KSM run writes, in the order they are restored (run last: ksmd restarts with the old
# pace); use_zero_pages lets the report tell merged zero pages (ksm_zero_pages) from the rest
KSM_TUNABLES = ("pages_to_scan", "sleep_millisecs", "use_zero_pages", "run")
# what the counters say (read-only files): see Documentation/admin-guide/mm/ksm.rst
KSM_COUNTERS = (
    "full_scans",
    "pages_shared",
    "pages_sharing",
    "pages_unshared",
    "pages_volatile",
    "pages_scanned",
    "ksm_zero_pages",
    "general_profit",
)


class ParseError(ValueError):
    """A /proc or /sys file did not have the form this kernel documents."""


def _kib_lines(text: str, what: str) -> dict[str, int]:
    """`Key:   123 kB` lines to {key: bytes}; lines without a unit are counts (HugePages_Total)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        value = int(parts[0])
        if len(parts) > 1:
            if parts[1] != "kB":
                raise ParseError(f"{what}: unit {parts[1]!r} in line {line!r} (expected kB)")
            value *= 1024
        out[key.strip()] = value
    return out


def parse_smaps_rollup(text: str) -> dict[str, int]:
    """/proc/PID/smaps_rollup: {Rss, Pss, Private_Dirty, ...} in bytes, plus `Uss` (private pages)."""
    lines = text.splitlines()
    if not lines or "[rollup]" not in lines[0]:
        raise ParseError("smaps_rollup: the first line is not the [rollup] header")
    out = _kib_lines("\n".join(lines[1:]), "smaps_rollup")
    for key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
        if key not in out:
            raise ParseError(f"smaps_rollup: no {key} line")
    out["Uss"] = out["Private_Clean"] + out["Private_Dirty"]
    return out


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in bytes (counts such as HugePages_Total stay counts)."""
    out = _kib_lines(text, "meminfo")
    for key in ("MemTotal", "MemFree"):
        if key not in out:
            raise ParseError(f"meminfo: no {key} line")
    return out


def parse_ksm_stat(text: str) -> dict[str, int]:
    """/proc/PID/ksm_stat (`ksm_merging_pages 12` lines); yes/no lines are left out."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def parse_guest_meminfo(text: str) -> dict[str, int]:
    """The guest's /proc/meminfo as `cat` prints it over SSH: the same format as the host's."""
    return parse_meminfo(text)


@dataclass(frozen=True)
class ProcMem:
    pid: int
    rss: int
    pss: int
    uss: int
    ksm: int  # bytes of this process's mappings that are KSM pages (smaps_rollup's KSM line)
    merging_pages: int | None  # /proc/PID/ksm_stat; None on kernels without it
    anon_huge: int = 0  # transparent huge pages (KSM splits those it merges into)


def read_proc(pid: int, proc: Path = Path("/proc")) -> ProcMem:
    """One process's memory; OSError when it is gone or not readable."""
    roll = parse_smaps_rollup((proc / str(pid) / "smaps_rollup").read_text())
    try:
        stat = parse_ksm_stat((proc / str(pid) / "ksm_stat").read_text())
        merging: int | None = stat.get("ksm_merging_pages")
    except OSError:
        merging = None
    return ProcMem(
        pid, roll["Rss"], roll["Pss"], roll["Uss"], roll.get("KSM", 0), merging, roll.get("AnonHugePages", 0)
    )


def read_meminfo(path: Path = Path("/proc/meminfo")) -> dict[str, int]:
    return parse_meminfo(path.read_text())


def read_ksm(directory: Path = KSM_DIR) -> dict[str, int]:
    """Every KSM counter and tunable this kernel has (a missing file is left out)."""
    out: dict[str, int] = {}
    for name in (*KSM_COUNTERS, *KSM_TUNABLES):
        try:
            out[name] = int((directory / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return out


def guest_ram_mergeable(pid: int, guest_bytes: int, proc: Path = Path("/proc")) -> bool | None:
    """Whether QEMU marked the guest RAM mapping (the anonymous one of exactly the guest's size)
    MADV_MERGEABLE: its VmFlags in /proc/PID/smaps hold `mg`. None when no mapping has that size."""
    return parse_mergeable((proc / str(pid) / "smaps").read_text(), guest_bytes)


def parse_mergeable(smaps: str, guest_bytes: int) -> bool | None:
    size = None
    for line in smaps.splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:
            lo, _, hi = head[0].partition("-")
            try:
                size = int(hi, 16) - int(lo, 16)
            except ValueError:
                size = None
        elif line.startswith("VmFlags:") and size == guest_bytes:
            return "mg" in line.split()[1:]
    return None
