from __future__ import annotations

from pathlib import Path

import pytest

from vmlab.backends.counters import (
    CounterParseError,
    delta,
    expansion_ratio,
    parse_info_jit,
    parse_libvirt_vm_stats,
    parse_strace_summary,
    qemu_version_note,
    read_debugfs_vm,
)

FIX = Path(__file__).parent / "fixtures"


def test_info_jit_of_qemu_7_2() -> None:
    text = (FIX / "info_jit.txt").read_text()
    c = parse_info_jit(text)
    assert c["tb_count"] == 2117
    assert c["code_size_bytes"] == 1138867 and c["code_buffer_bytes"] == 1073736704
    assert c["direct_jumps"] == 1211 and c["direct_jumps_both"] == 871
    assert c["tb_invalidations"] == 149 and c["tb_flushes"] == 0
    assert expansion_ratio(text) == 22.7


def test_info_jit_of_qemu_10_0() -> None:
    """Debian 13's QEMU 10.0 (captured: qemu-system-x86_64 -accel tcg, SeaBIOS with no disk, 3 s):
    an "Accelerator settings" block comes first; the counters below it are 7.2's."""
    text = (FIX / "info_jit_qemu10.txt").read_text()
    assert text.startswith("Accelerator settings:")
    c = parse_info_jit(text)
    assert c["tb_count"] == 2210
    assert c["code_size_bytes"] == 1215779 and c["code_buffer_bytes"] == 1073736704
    assert c["direct_jumps"] == 1334 and c["direct_jumps_both"] == 852
    assert c["tb_invalidations"] == 178 and c["tlb_partial_flushes"] == 142
    assert expansion_ratio(text) == 25.0
    assert set(c) == set(parse_info_jit((FIX / "info_jit.txt").read_text()))


@pytest.mark.parametrize(
    ("info_version", "known"),
    [
        ("7.2.22Debian 1:7.2+dfsg-7+deb12u18+b3", True),
        ("10.0.13Debian 1:10.0.13+ds-0+deb13u1", True),
        ("8.2.2Debian 1:8.2.2+ds-0ubuntu1", False),
        ("", True),
    ],
)
def test_qemu_version_note(info_version: str, known: bool) -> None:
    note = qemu_version_note(info_version)
    assert (note is None) is known
    if note:
        assert note.startswith("QEMU 8.2 is outside") and "7.2, 10.0" in note and "\n" not in note


def test_info_jit_rejects_other_text() -> None:
    with pytest.raises(CounterParseError, match="not the output of 'info jit'"):
        parse_info_jit("unknown command: 'info jit'\n")


def test_strace_summary() -> None:
    c = parse_strace_summary((FIX / "strace_c.txt").read_text())
    assert c["read"] == 14 and c["write"] == 13 and c["mmap"] == 29
    assert c["total"] == sum(v for k, v in c.items() if k != "total")


def test_strace_summary_with_errors_column() -> None:
    text = """% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 50.00    0.000002           1         2         1 openat
 50.00    0.000002           2         1           read
------ ----------- ----------- --------- --------- ----------------
100.00    0.000004           1         3         1 total
"""
    assert parse_strace_summary(text) == {"openat": 2, "read": 1, "total": 3}


def test_strace_without_table() -> None:
    with pytest.raises(CounterParseError):
        parse_strace_summary("strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n")


def test_debugfs_per_vm_dir(tmp_path: Path) -> None:
    vm = tmp_path / "4242-11"
    vm.mkdir()
    (vm / "exits").write_text("1500\n")
    (vm / "io_exits").write_text("7\n")
    (tmp_path / "999-3").mkdir()
    assert read_debugfs_vm(4242, tmp_path) == {"exits": 1500, "io_exits": 7}
    assert read_debugfs_vm(1, tmp_path) is None


def test_libvirt_vm_stats_keys() -> None:
    stats = {
        "state.state": 1,
        "vm.exits.sum": 100,
        "vm.halt_exits.sum": 4,
        "vm.max_mmu_page_hash_collisions.cur": 2,
    }
    assert parse_libvirt_vm_stats(stats) == {"exits": 100, "halt_exits": 4, "max_mmu_page_hash_collisions": 2}


def test_delta() -> None:
    assert delta({"a": 5, "b": 2}, {"a": 3}) == {"a": 2, "b": 2}
