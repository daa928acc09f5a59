"""Trace-line parsing and counting for the devices step, on lines written by hand in QEMU 7.2's format
(trace-events of softmmu: "cpu %d mr %p addr 0x%x value 0x%x size %u name '%s'"), with and without the
"PID@SEC.USEC:" prefix that `-msg timestamp=on` adds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmlab.systemvm import devtrace
from vmlab.systemvm.devices import expected_serial_bytes, measure_of
from vmlab.systemvm.devtrace import Access, LogTail, count_accesses, parse_line, regions_of, settle

HPET_W = (
    "4062@1796620070.991907:memory_region_ops_write cpu 0 mr 0x563c1df97ec0 addr 0xfed00108 "
    "value 0xa8146a7 size 4 name 'hpet'"
)
MSI_W = "memory_region_ops_write cpu -1 mr 0x563c1d681ca0 addr 0xfee01004 value 0x30 size 4 name 'apic-msi'"
THR_W = "77@1.5:memory_region_ops_write cpu 0 mr 0x55 addr 0x3f8 value 0x41 size 1 name 'serial'"
IER_W = "77@1.6:memory_region_ops_write cpu 0 mr 0x55 addr 0x3f9 value 0x2 size 1 name 'serial'"
LSR_R = "77@1.7:memory_region_ops_read cpu 0 mr 0x55 addr 0x3fd value 0x60 size 1 name 'serial'"
LIBVIRT = "2026-12-07 05:07:50.986+0000: Domain id=1 is tainted: custom-monitor"


def test_a_timestamped_write_is_parsed() -> None:
    assert parse_line(HPET_W) == Access("write", "hpet", 0xFED00108, 0xA8146A7, 4, 0)


def test_a_plain_line_without_timestamp_and_an_access_from_no_vcpu() -> None:
    acc = parse_line(MSI_W)
    assert acc is not None and acc.cpu == -1 and acc.region == "apic-msi" and acc.addr == 0xFEE01004


def test_a_read_is_a_read() -> None:
    acc = parse_line(LSR_R)
    assert acc is not None and acc.op == "read" and acc.value == 0x60 and acc.size == 1


@pytest.mark.parametrize(
    "line",
    [
        LIBVIRT,
        "-device virtio-net-pci,netdev=vmlabnet0,bus=pcie.0,addr=0x10,romfile= \\",
        "memory_region_ops_write cpu 0 mr 0x1 addr 0x3f8 value 0x41 size 1",  # no name: cut off
        "qemu-system-x86_64: terminating on signal 15 from pid 1",
        "",
    ],
)
def test_other_lines_of_the_domain_log_are_no_access(line: str) -> None:
    assert parse_line(line) is None


def test_counts_per_region_and_op_with_totals() -> None:
    lines = [LIBVIRT, HPET_W, HPET_W, MSI_W, THR_W, THR_W, THR_W, IER_W, LSR_R]
    c = count_accesses(lines)
    # by hand: hpet 2 writes; apic-msi 1 write; serial 4 writes (3 at 0x3f8, 1 at 0x3f9) and 1 read
    assert c["hpet:write"] == 2 and c["apic-msi:write"] == 1
    assert c["serial:write"] == 4 and c["serial:read"] == 1
    assert c["serial:thr_write"] == 3
    assert c["writes"] == 7 and c["reads"] == 1 and c["total"] == 8
    assert "hpet:read" not in c


def test_an_empty_phase_counts_zero() -> None:
    assert count_accesses([LIBVIRT]) == {"reads": 0, "writes": 0, "total": 0, "serial:thr_write": 0}


def test_a_write_to_another_uart_register_is_not_a_transmitted_byte() -> None:
    assert count_accesses([IER_W])["serial:thr_write"] == 0  # 0x3f9: interrupt enable
    com2 = THR_W.replace("addr 0x3f8", "addr 0x2f8")  # a second port would be COM2, not the console
    assert count_accesses([com2])["serial:thr_write"] == 0


def test_region_names_become_one_path_segment() -> None:
    line = HPET_W.replace("'hpet'", "'virtio-pci.notify:x y'")
    assert "virtio-pci-notify-x-y:write" in count_accesses([line])


def test_regions_busiest_first_with_or_without_phase_prefix() -> None:
    counts = {"hpet:read": 5, "hpet:write": 2, "serial:write": 9, "serial:thr_write": 9, "total": 16}
    assert regions_of(counts) == ["serial", "hpet"]
    phased = {"idle:hpet:read": 3, "io:serial:write": 9, "io:serial:thr_write": 9, "io:total": 9}
    assert regions_of(phased) == ["serial", "hpet"]


def test_expected_serial_bytes_from_od_by_hand() -> None:
    # 1 block = 64 zero bytes: od -v prints 4 lines "0000000 000000 ... 000000" (7 + 8 x 7 = 63
    # characters) and the closing address "0000100" (7); with onlcr every line ends "\r\n":
    # 4 x 65 + 9 = 269.
    assert expected_serial_bytes(1) == 269
    assert expected_serial_bytes(16) == 16 * 260 + 9 == 4169


def test_the_headline_measure_follows_the_provider() -> None:
    assert measure_of(devtrace.PROVIDER) == "device accesses (TCG)"
    assert measure_of("kvm debugfs per-VM stats") == "VM exits (KVM)"
    assert measure_of("strace -c -f on the container's process") == "system calls"
    assert measure_of(None) == "count"


def test_the_log_tail_reads_only_what_was_appended(tmp_path: Path) -> None:
    log = tmp_path / "dom.log"
    log.write_text(LIBVIRT + "\n")
    tail = LogTail(log)
    tail.mark()
    with log.open("a") as f:
        f.write(THR_W + "\n")
    assert tail.read_new() == THR_W + "\n"


def test_the_log_tail_follows_one_rotation(tmp_path: Path) -> None:
    """virtlogd renames DOM.log to DOM.log.0 at its max size and opens a new DOM.log."""
    log = tmp_path / "dom.log"
    log.write_text(LIBVIRT + "\n")
    tail = LogTail(log)
    tail.mark()
    with log.open("a") as f:
        f.write(THR_W + "\n")
    os.rename(log, tmp_path / "dom.log.0")
    log.write_text(IER_W + "\n")
    assert tail.read_new().splitlines() == [THR_W, IER_W]


def test_switch_raises_when_qemu_answers_with_a_complaint() -> None:
    sent: list[str] = []

    def monitor(cmd: str) -> str:
        sent.append(cmd)
        return "" if "read" in cmd else "Unknown event name\r\n"

    with pytest.raises(devtrace.TraceUnavailable, match="Unknown event name"):
        devtrace.switch(monitor, True)
    assert sent == ["trace-event memory_region_ops_read on", "trace-event memory_region_ops_write on"]


def test_settle_returns_once_the_count_stops_growing() -> None:
    values = iter([1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3])
    assert settle(lambda: next(values), quiet_s=0.2, limit_s=5) == 3
