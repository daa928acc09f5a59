"""Parsers for the counter providers the traps experiment reads.

Each provider has a name that goes into the report, so a reader knows whether a number is a VM exit
counted by KVM, a translation block counted by QEMU's TCG, or a system call counted by strace.
"""

from __future__ import annotations

import re
from pathlib import Path

# QEMU's HMP `info jit` (TCG only): binary translation made visible.
_JIT_FIELDS: dict[str, str] = {
    "tb_count": r"^TB count\s+(\d+)",
    "code_size_bytes": r"^gen code size\s+(\d+)/\d+",
    "code_buffer_bytes": r"^gen code size\s+\d+/(\d+)",
    "tb_avg_target_bytes": r"^TB avg target size\s+(\d+)",
    "tb_avg_host_bytes": r"^TB avg host size\s+(\d+)",
    "cross_page_tbs": r"^cross page TB count\s+(\d+)",
    "direct_jumps": r"^direct jump count\s+(\d+)",
    "direct_jumps_both": r"^direct jump count.*\(2 jumps=(\d+)",
    "tb_flushes": r"^TB flush count\s+(\d+)",
    "tb_invalidations": r"^TB invalidate count\s+(\d+)",
    "tlb_full_flushes": r"^TLB full flushes\s+(\d+)",
    "tlb_partial_flushes": r"^TLB partial flushes\s+(\d+)",
}
JIT_PROVIDER = "qemu-tcg: HMP info jit"
# The QEMU releases whose `info jit` was captured and parsed (tests/unit/backends/fixtures/):
# 7.2 on Debian 12; 10.0 on Debian 13, which prints an "Accelerator settings" block first and the same
# counters after it.
INFO_JIT_KNOWN = {7: "7.2", 10: "10.0"}


class CounterParseError(ValueError):
    pass


def parse_info_jit(text: str) -> dict[str, int]:
    """Integer counters of `info jit`; the expansion ratio is derived by the caller from two of them."""
    counts: dict[str, int] = {}
    for key, pattern in _JIT_FIELDS.items():
        m = re.search(pattern, text, re.MULTILINE)
        if m:
            counts[key] = int(m.group(1))
    if "tb_count" not in counts:
        first = text.strip().splitlines()[0] if text.strip() else "<empty>"
        raise CounterParseError(f"not the output of 'info jit' (no TB count): {first[:80]}")
    return counts


def qemu_version_note(info_version: str) -> str | None:
    """One line when QEMU (HMP `info version`: "10.0.13Debian 1:10.0.13+ds-...") is outside the
    releases whose `info jit` the kit knows; None when it is known (or the text names no version)."""
    m = re.match(r"\s*(\d+)\.(\d+)", info_version)
    if not m or int(m.group(1)) in INFO_JIT_KNOWN:
        return None
    known = ", ".join(INFO_JIT_KNOWN.values())
    return (
        f"QEMU {m.group(1)}.{m.group(2)} is outside the releases whose 'info jit' this kit knows "
        f"({known}): a counter it renamed is missing from the report, not zero"
    )


def expansion_ratio(text: str) -> float | None:
    m = re.search(r"expansion ratio:\s*([\d.]+)", text)
    return float(m.group(1)) if m else None


STRACE_PROVIDER = "strace -c -f on the container's process"
IN_CONTAINER_STRACE = "/usr/bin/strace"  # the tiny image ships strace here (in rootfs.tar)


def parse_strace_summary(text: str) -> dict[str, int]:
    """Calls per system call from `strace -c` (the 'total' row is returned as 'total')."""
    counts: dict[str, int] = {}
    seen_header = False
    for line in text.splitlines():
        if line.lstrip().startswith("% time"):
            seen_header = True
            continue
        if not seen_header or line.startswith("-") or not line.strip():
            continue
        cols = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall (the total row has the same columns)
        name = cols[-1]
        try:
            calls = int(cols[3])
        except (IndexError, ValueError):
            raise CounterParseError(f"unexpected strace -c line: {line.strip()!r}") from None
        counts[name] = calls
    if not seen_header:
        raise CounterParseError("no strace -c summary table found")
    return counts


DEBUGFS_PROVIDER = "kvm debugfs per-VM stats (/sys/kernel/debug/kvm/<pid>-<fd>)"
DEBUGFS_KVM = Path("/sys/kernel/debug/kvm")
EXIT_STATS = (
    "exits",
    "io_exits",
    "mmio_exits",
    "halt_exits",
    "irq_exits",
    "insn_emulation",
    "signal_exits",
    "hypercalls",
    "irq_window_exits",
    "nmi_window_exits",
    "request_irq_exits",
)


def read_debugfs_vm(pid: int, root: Path = DEBUGFS_KVM) -> dict[str, int] | None:
    """Per-VM exit counters of the VM owned by `pid`, or None when debugfs shows no such VM."""
    dirs = sorted(root.glob(f"{pid}-*")) if root.is_dir() else []
    if not dirs:
        return None
    counts: dict[str, int] = {}
    for d in dirs:  # one directory per VM fd; a QEMU process has one
        for name in EXIT_STATS:
            f = d / name
            try:
                counts[name] = counts.get(name, 0) + int(f.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return counts


LIBVIRT_VM_PROVIDER = "libvirt domain stats (VIR_DOMAIN_STATS_VM, QMP query-stats)"


def parse_libvirt_vm_stats(stats: dict[str, object]) -> dict[str, int]:
    """KVM counters from virConnectGetAllDomainStats' vm.* keys (e.g. vm.exits.sum → exits)."""
    counts: dict[str, int] = {}
    for key, value in stats.items():
        if not key.startswith("vm.") or not isinstance(value, int) or isinstance(value, bool):
            continue
        name = key[3:]
        for suffix in (".sum", ".cur"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        counts[name.replace(".", "_")] = value
    return counts


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}
