from __future__ import annotations

from collections import namedtuple

import pytest

from vmlab.backends.capabilities import MIB, MapEntry
from vmlab.backends.capabilities import maps_from_psutil as from_psutil
from vmlab.systemvm.memory_maps import account

PsMap = namedtuple("PsMap", "addr perms path rss size pss private_clean private_dirty")


def qemu_like_maps() -> list[MapEntry]:
    """Shape of a 256 MiB TCG guest's QEMU process measured here ."""
    return [
        MapEntry("/usr/bin/qemu-system-x86_64", 20 * MIB, 12 * MIB, 10 * MIB, 2 * MIB),
        MapEntry("[heap]", 40 * MIB, 30 * MIB, 30 * MIB, 30 * MIB),
        MapEntry("", 256 * MIB, 100 * MIB, 100 * MIB, 100 * MIB),  # guest RAM
        MapEntry("", 1024 * MIB, 52 * MIB, 52 * MIB, 52 * MIB),  # TCG code buffer
        MapEntry("", 8 * MIB, 1 * MIB, 1 * MIB, 1 * MIB),
    ]


def test_guest_ram_and_code_buffer_are_found_by_size() -> None:
    m = account(qemu_like_maps(), 256, tcg=True)
    assert m.guest_ram_size == 256 * MIB and m.guest_ram_rss == 100 * MIB
    assert m.code_buffer_size == 1024 * MIB and m.code_buffer_rss == 52 * MIB
    assert m.rss == 195 * MIB and m.overhead_rss == 95 * MIB
    assert m.uss == 185 * MIB


def test_without_tcg_no_code_buffer() -> None:
    m = account(qemu_like_maps(), 256, tcg=False)
    assert m.code_buffer_size == 0 and m.overhead_rss == 95 * MIB


def test_missing_guest_ram_mapping_is_an_error() -> None:
    with pytest.raises(ValueError, match="no anonymous mapping of 512 MiB"):
        account(qemu_like_maps(), 512, tcg=True)


def test_from_psutil_rows() -> None:
    rows = [PsMap("7f0000000000-7f0010000000", "rw-p", "", 4096, 0, 4096, 0, 4096)]
    (e,) = from_psutil(rows)
    assert e.size == 0x10000000 and e.anonymous and e.private == 4096
