"""Device accesses that trap to QEMU, counted from QEMU's own trace events (works under TCG too).

Under KVM an access to an emulated device leaves the guest (a VM exit) and QEMU's device model handles
it; under TCG there is no exit, but translated code calls the same device model. Either way QEMU's
trace events `memory_region_ops_read` and `memory_region_ops_write` fire once per access, naming the
device region (`serial`, `hpet`, `apic-msi`, `pci-conf-idx`, ...). Debian 12's QEMU 7.2 is built with
the `log` trace backend, which prints one line per event to QEMU's stderr; libvirt hands that stderr to
virtlogd, which writes the domain's log (/var/log/libvirt/qemu/DOM.log for qemu:///system,
~/.cache/libvirt/qemu/log/DOM.log for qemu:///session). With `-msg timestamp=on` (libvirt passes it)
a line reads

    4062@1796620070.991907:memory_region_ops_write cpu 0 mr 0x563c1df97ec0 addr 0xfed00108 \
        value 0xa8146a7 size 4 name 'hpet'

(one line in the log, broken here)
and without it the same line starts at the event name. `addr` is the absolute address (guest physical
for MMIO, the port number for port I/O). The events are switched on through the HMP monitor only around
one phase (`trace-event NAME on|off`), so boots are not slowed and the log stays small.

The serial port is COM1, QEMU's isa-serial index 0 at ports 0x3f8-0x3ff: a write to 0x3f8 with the
divisor latch off is one byte into the 16550's transmit holding register (THR). Linux's 8250 driver
never touches the divisor latch while a program writes to the tty, so THR writes are exactly the bytes
the tty layer sends: the program's bytes, each "\\n" preceded by a "\\r" (the default `onlcr`).
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

PROVIDER = "qemu-trace: memory_region_ops_read/_write (HMP trace-event, log backend)"
EVENTS = ("memory_region_ops_read", "memory_region_ops_write")
COM1_THR = 0x3F8  # transmit holding register of the first serial port (QEMU isa-serial index 0)
SERIAL_REGION = "serial"
THR_KEY = "serial:thr_write"

_LINE = re.compile(
    r"(?:^|[@:\s])memory_region_ops_(?P<op>read|write) cpu (?P<cpu>-?\d+) mr 0x[0-9a-fA-F]+ "
    r"addr 0x(?P<addr>[0-9a-fA-F]+) value 0x(?P<value>[0-9a-fA-F]+) size (?P<size>\d+) "
    r"name '(?P<name>[^']*)'"
)


@dataclass(frozen=True)
class Access:
    """One access to an emulated device region, as one trace line names it."""

    op: Literal["read", "write"]
    region: str
    addr: int
    value: int
    size: int
    cpu: int  # -1: not from a vCPU (QEMU's own thread, e.g. an MSI the device model sent)


def parse_line(line: str) -> Access | None:
    """The access a trace line records; None for any other line of the domain log."""
    m = _LINE.search(line)
    if m is None:
        return None
    op: Literal["read", "write"] = "read" if m["op"] == "read" else "write"
    return Access(op, m["name"], int(m["addr"], 16), int(m["value"], 16), int(m["size"]), int(m["cpu"]))


def region_key(name: str) -> str:
    """A region name as one segment of a report path: dots, colons and blanks become '-'."""
    return re.sub(r"[.:\s]+", "-", name.strip()) or "unnamed"


def count_accesses(lines: Iterable[str]) -> dict[str, int]:
    """Per region `<region>:read` and `<region>:write`, the totals `reads`, `writes` and `total`, and
    `serial:thr_write` (bytes sent through COM1's transmit register)."""
    counts: Counter[str] = Counter()
    for line in lines:
        acc = parse_line(line)
        if acc is None:
            continue
        counts[f"{region_key(acc.region)}:{acc.op}"] += 1
        counts[f"{acc.op}s"] += 1
        if acc.op == "write" and acc.region == SERIAL_REGION and acc.addr == COM1_THR:
            counts[THR_KEY] += 1
    counts["total"] = counts["reads"] + counts["writes"]
    for key in ("reads", "writes", THR_KEY):
        counts.setdefault(key, 0)
    return dict(counts)


def regions_of(counts: dict[str, int]) -> list[str]:
    """Region names among counts (`<region>:<op>`, or `<phase>:<region>:<op>`), busiest first."""
    per: Counter[str] = Counter()
    for key, n in counts.items():
        parts = key.split(":")
        if parts[-1] not in ("read", "write") or len(parts) not in (2, 3):
            continue
        region = parts[-2]
        if region != "serial" or parts[-1] != "thr_write":
            per[region] += n
    return [r for r, _ in per.most_common()]


class LogTail:
    """What a file gained since `mark()`, across one rotation (virtlogd renames DOM.log to DOM.log.0
    when it reaches its max_size, 2 MiB by default, and starts a new file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ino = 0
        self._offset = 0

    def mark(self) -> None:
        st = self.path.stat()
        self._ino, self._offset = st.st_ino, st.st_size

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read_new(self) -> str:
        st = self.path.stat()
        parts: list[bytes] = []
        if st.st_ino != self._ino:  # rotated: the rest of the old file, then the new one from its start
            rotated = self.path.with_name(self.path.name + ".0")
            if rotated.is_file() and rotated.stat().st_ino == self._ino:
                parts.append(_read_from(rotated, self._offset))
            parts.append(_read_from(self.path, 0))
        else:
            parts.append(_read_from(self.path, self._offset))
        return b"".join(parts).decode("utf-8", "replace")


def _read_from(path: Path, offset: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read()


class Traced(Protocol):
    """What the counter needs of a guest: HMP commands and shell commands (a LibvirtInstance)."""

    name: str

    def monitor(self, hmp_command: str) -> str: ...
    def exec(self, cmd: str, timeout: float = 60.0) -> object: ...


class TraceUnavailable(RuntimeError):
    """QEMU rejected the trace events (a build without the log backend, or without these events)."""


def switch(monitor: Callable[[str], str], on: bool) -> None:
    """Both events on or off; QEMU answers an unknown event with a message instead of an error."""
    for event in EVENTS:
        answer = monitor(f"trace-event {event} {'on' if on else 'off'}").strip()
        if answer:
            raise TraceUnavailable(f"QEMU refused 'trace-event {event}': {answer.splitlines()[0][:120]}")


def settle(read_count: Callable[[], int], *, quiet_s: float = 0.4, limit_s: float = 15.0) -> int:
    """Wait until a growing count stops growing for `quiet_s` (bounded by `limit_s`), and return it.

    Used for the serial port: the guest's tty keeps sending what it buffered after the writing program
    ended (init holds the console open, so close() does not wait for the output to drain)."""
    deadline = time.monotonic() + limit_s
    last = read_count()
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = read_count()
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet_s:
            break
    return last


def wait_flushed(tail: LogTail, *, quiet_s: float = 0.3, limit_s: float = 10.0) -> None:
    """After the events are off: wait until virtlogd has written every line QEMU emitted."""
    settle(tail.size, quiet_s=quiet_s, limit_s=limit_s)


def readable_log(path: Path | None) -> Path | None:
    """The domain log when this user may read it, else None."""
    if path is None or not os.access(path, os.R_OK):
        return None
    return path
