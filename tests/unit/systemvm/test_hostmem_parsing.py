"""The /proc and /sys parsers of the memory tasks, on inputs written by hand in the kernel's formats
(Documentation/filesystems/proc.rst: smaps_rollup, meminfo, ksm_stat; admin-guide/mm/ksm.rst)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmlab.systemvm.hostmem import (
    ParseError,
    parse_ksm_stat,
    parse_meminfo,
    parse_mergeable,
    parse_smaps_rollup,
    read_ksm,
    read_proc,
)

ROLLUP = """\
55d1c0a00000-7ffd2c1ff000 ---p 00000000 00:00 0                          [rollup]
Rss:              276480 kB
Pss:              240000 kB
Pss_Dirty:        230000 kB
Shared_Clean:      20000 kB
Shared_Dirty:      40000 kB
Private_Clean:      1000 kB
Private_Dirty:    215480 kB
Referenced:       276480 kB
Anonymous:        250000 kB
KSM:               65536 kB
AnonHugePages:     40960 kB
Swap:                  0 kB
"""


def test_smaps_rollup_in_bytes_with_uss() -> None:
    got = parse_smaps_rollup(ROLLUP)
    assert got["Rss"] == 276480 * 1024
    assert got["Pss"] == 240000 * 1024
    assert got["KSM"] == 64 * 1024 * 1024  # 65536 kB
    # USS = Private_Clean + Private_Dirty = 1000 + 215480 kB
    assert got["Uss"] == 216480 * 1024


def test_smaps_rollup_rejects_other_files() -> None:
    with pytest.raises(ParseError, match="rollup"):
        parse_smaps_rollup(ROLLUP.split("\n", 1)[1])  # the header line missing: not smaps_rollup
    with pytest.raises(ParseError, match="Pss"):
        parse_smaps_rollup("0-1 ---p 0 0:0 0 [rollup]\nRss: 4 kB\nPrivate_Clean: 0 kB\nPrivate_Dirty: 4 kB\n")
    with pytest.raises(ParseError, match="unit"):
        parse_smaps_rollup("0-1 ---p 0 0:0 0 [rollup]\nRss: 4 MB\n")


def test_meminfo_bytes_and_counts() -> None:
    text = (
        "MemTotal:       24683772 kB\nMemFree:        22053532 kB\n"
        "MemAvailable:   24100096 kB\nHugePages_Total:       0\n"
    )
    got = parse_meminfo(text)
    assert got["MemTotal"] == 24683772 * 1024
    assert got["MemAvailable"] == 24100096 * 1024
    assert got["HugePages_Total"] == 0  # a count, no unit
    with pytest.raises(ParseError, match="MemTotal"):
        parse_meminfo("MemFree: 1 kB\n")


def test_ksm_stat_numbers_only() -> None:
    text = (
        "ksm_rmap_items 120\nksm_zero_pages 3\nksm_merging_pages 100\nksm_process_profit -4096\n"
        "ksm_merge_any: no\nksm_mergeable: yes\n"
    )
    assert parse_ksm_stat(text) == {
        "ksm_rmap_items": 120,
        "ksm_zero_pages": 3,
        "ksm_merging_pages": 100,
        "ksm_process_profit": -4096,
    }


SMAPS = """\
7f0000000000-7f0010000000 rw-p 00000000 00:00 0
Size:             262144 kB
Rss:              102400 kB
VmFlags: rd wr mr mw me ac sd mg hg
7f0010000000-7f0050000000 rwxp 00000000 00:00 0
Size:            1048576 kB
VmFlags: rd wr ex mr mw me ac sd
"""


def test_guest_ram_mapping_found_by_size_and_mg_flag() -> None:
    # 0x7f0010000000 - 0x7f0000000000 = 0x10000000 = 256 MiB: the guest RAM, marked `mg`
    assert parse_mergeable(SMAPS, 256 * 1024 * 1024) is True
    # the 1 GiB mapping (TCG's code buffer, 0x40000000) carries no `mg`
    assert parse_mergeable(SMAPS, 1024 * 1024 * 1024) is False
    assert parse_mergeable(SMAPS, 128 * 1024 * 1024) is None  # no mapping of that size


def test_readers_on_a_copy(tmp_path: Path) -> None:
    ksm = tmp_path / "ksm"
    ksm.mkdir()
    for name, value in {"run": 1, "pages_sharing": 33829, "pages_shared": 900, "full_scans": 2}.items():
        (ksm / name).write_text(f"{value}\n")
    got = read_ksm(ksm)
    assert got == {"run": 1, "pages_sharing": 33829, "pages_shared": 900, "full_scans": 2}

    proc = tmp_path / "proc"
    (proc / "42").mkdir(parents=True)
    (proc / "42" / "smaps_rollup").write_text(ROLLUP)
    (proc / "42" / "ksm_stat").write_text("ksm_merging_pages 16384\n")
    p = read_proc(42, proc)
    assert (p.rss, p.pss, p.uss) == (276480 * 1024, 240000 * 1024, 216480 * 1024)
    assert p.merging_pages == 16384 and p.ksm == 65536 * 1024 and p.anon_huge == 40960 * 1024
    (proc / "42" / "ksm_stat").unlink()  # kernels before 6.1 have none
    assert read_proc(42, proc).merging_pages is None
