"""Kernel-side counters: the binary stats fd (KVM_GET_STATS_FD) and, where mounted, debugfs.

The stats fd is self-describing: a header, an id string, one descriptor per statistic (flags, exponent,
size in u64 items, offset into the data block, name), then the data block. We parse the layout once
and re-read only the data block, so a before/after delta costs one pread.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vmlab.kvmapi.structs import StatsDesc, StatsHeader

if TYPE_CHECKING:
    from vmlab.kvmapi.machine import Vcpu

TYPES = {0: "cumulative", 1: "instant", 2: "peak", 3: "linear_hist", 4: "log_hist"}
UNITS = {0: "none", 1: "bytes", 2: "seconds", 3: "cycles", 4: "boolean"}
BASES = {0: 10, 1: 2}

# (size, offset) -> bytes: an fd through os.pread, or a bytes object in unit tests.
ReadAt = Callable[[int, int], bytes]

# The figures the lab talks about, in the order students meet them.
INTERESTING = (
    "exits",
    "io_exits",
    "mmio_exits",
    "halt_exits",
    "insn_emulation",
    "insn_emulation_fail",
    "hypercalls",
    "signal_exits",
    "request_irq_exits",
    "irq_exits",
    "host_state_reload",
    "fpu_reload",
)


@dataclass(frozen=True)
class StatDescriptor:
    name: str
    flags: int
    exponent: int
    size: int
    offset: int
    bucket_size: int

    @property
    def type(self) -> str:
        return TYPES.get(self.flags & 0xF, f"type{self.flags & 0xF}")

    @property
    def unit(self) -> str:
        return UNITS.get((self.flags >> 4) & 0xF, f"unit{(self.flags >> 4) & 0xF}")

    @property
    def base(self) -> int:
        return BASES.get((self.flags >> 8) & 0xF, 10)


@dataclass(frozen=True)
class StatsLayout:
    id: str
    data_offset: int
    descriptors: tuple[StatDescriptor, ...]

    @property
    def data_size(self) -> int:
        return max((d.offset + 8 * d.size for d in self.descriptors), default=0)


class StatsFormatError(ValueError):
    """The bytes are not a KVM binary stats file (truncated, offsets out of range)."""


def parse_layout(read_at: ReadAt) -> StatsLayout:
    """Parse header, id and descriptors through a pread-like callable (fd or bytes in tests)."""
    hsize = struct.calcsize("<6I")
    raw = read_at(hsize, 0)
    if len(raw) < hsize:
        raise StatsFormatError(f"stats header is {len(raw)} bytes, expected {hsize}")
    header = StatsHeader.from_buffer_copy(raw)
    if header.name_size == 0 or header.name_size > 4096:
        raise StatsFormatError(f"implausible name_size {header.name_size}")
    id_raw = read_at(header.name_size, header.id_offset)
    stats_id = id_raw.split(b"\0", 1)[0].decode("ascii", "replace")
    dsize = struct.calcsize("<IhHII")
    stride = dsize + header.name_size
    block = read_at(stride * header.num_desc, header.desc_offset)
    if len(block) < stride * header.num_desc:
        raise StatsFormatError(
            f"descriptor block is {len(block)} bytes, expected {stride * header.num_desc} "
            f"({header.num_desc} descriptors)"
        )
    descs: list[StatDescriptor] = []
    for i in range(header.num_desc):
        base = i * stride
        d = StatsDesc.from_buffer_copy(block, base)
        name = block[base + dsize : base + stride].split(b"\0", 1)[0].decode("ascii", "replace")
        descs.append(StatDescriptor(name, d.flags, d.exponent, d.size, d.offset, d.bucket_size))
    return StatsLayout(stats_id, header.data_offset, tuple(descs))


def read_values(layout: StatsLayout, read_at: ReadAt) -> dict[str, tuple[int, ...]]:
    """All statistics' values (histograms are tuples of buckets, scalars 1-tuples)."""
    size = layout.data_size
    data = read_at(size, layout.data_offset)
    if len(data) < size:
        raise StatsFormatError(f"data block is {len(data)} bytes, expected {size}")
    return {d.name: struct.unpack_from(f"<{d.size}Q", data, d.offset) for d in layout.descriptors}


def fd_reader(fd: int) -> ReadAt:
    def read_at(size: int, offset: int) -> bytes:
        return os.pread(fd, size, offset)

    return read_at


def bytes_reader(buf: bytes) -> ReadAt:
    def read_at(size: int, offset: int) -> bytes:
        return buf[offset : offset + size]

    return read_at


class StatsFd:
    """A parsed stats fd: layout once, `snapshot()` of the scalar counters as often as needed."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._read = fd_reader(fd)
        self.layout = parse_layout(self._read)

    def snapshot(self) -> dict[str, int]:
        """Scalar statistics only (histograms summed would mislead; they are left out)."""
        values = read_values(self.layout, self._read)
        return {d.name: values[d.name][0] for d in self.layout.descriptors if d.size == 1}

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def delta(
    before: dict[str, int], after: dict[str, int], descriptors: tuple[StatDescriptor, ...]
) -> dict[str, int]:
    """after - before for cumulative counters; instant and peak values are taken as they are after."""
    kinds = {d.name: d.type for d in descriptors}
    return {
        name: (value - before.get(name, 0)) if kinds.get(name) == "cumulative" else value
        for name, value in after.items()
    }


# ---- debugfs ------------------------------------------------------------------------------------

DEBUGFS = Path("/sys/kernel/debug")


def debugfs_mounted(mounts: Path = Path("/proc/mounts")) -> bool:
    try:
        return any(line.split()[2] == "debugfs" for line in mounts.read_text().splitlines() if line.strip())
    except (OSError, IndexError):
        return False


def mount_debugfs() -> str | None:
    """Mount debugfs (asked for by the user); returns None on success or the reason it failed."""
    import subprocess

    if debugfs_mounted():
        return None
    try:
        proc = subprocess.run(
            ["mount", "-t", "debugfs", "none", str(DEBUGFS)], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"mount failed: {e}"
    if proc.returncode != 0:
        return f"mount failed: {proc.stderr.strip() or proc.returncode}"
    return None


def debugfs_vm_dir(vm_fd: int, pid: int | None = None) -> Path:
    """KVM names a VM's debugfs directory '<pid>-<vm fd>'; its vCPU counters are sums over vCPUs."""
    return DEBUGFS / "kvm" / f"{pid if pid is not None else os.getpid()}-{vm_fd}"


def read_debugfs(vm_fd: int, names: tuple[str, ...] = INTERESTING) -> tuple[dict[str, int] | None, str]:
    """The VM's debugfs counters and a source label, or (None, why not)."""
    if not debugfs_mounted():
        return None, "debugfs not mounted (--mount-debugfs, or: mount -t debugfs none /sys/kernel/debug)"
    d = debugfs_vm_dir(vm_fd)
    if not d.is_dir():
        return None, f"{d} does not exist (no permission, or this kernel has no per-VM debugfs)"
    values: dict[str, int] = {}
    first_error = ""
    for name in names:
        try:
            values[name] = int((d / name).read_text().strip())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            first_error = first_error or f"{d / name}: {getattr(e, 'strerror', None) or e}"
    if not values:
        if first_error:
            return None, f"not permitted to read {first_error}"
        return None, f"{d} has none of {', '.join(names)}"
    return values, f"debugfs {d}"


@contextlib.contextmanager
def vcpu_stats(vcpu: Vcpu) -> Iterator[StatsFd | None]:
    """The vCPU's binary stats fd (KVM_GET_STATS_FD) for the run, or None where the kernel has none."""
    fd = vcpu.stats_fd()
    if fd is None:
        yield None
        return
    try:
        stats = StatsFd(fd)
    except (OSError, ValueError):
        os.close(fd)
        yield None
        return
    try:
        yield stats
    finally:
        stats.close()
