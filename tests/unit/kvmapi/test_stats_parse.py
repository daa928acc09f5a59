"""The binary stats format, parsed from bytes built here (the real kernel is in the integration tests)."""

import struct

import pytest

from vmlab.kvmapi.stats import StatsFormatError, bytes_reader, delta, parse_layout, read_values

NAME_SIZE = 48


def _stats_file(stats: list[tuple[str, int, int, list[int]]]) -> bytes:
    """(name, flags, size, values) -> a stats file: header, id, descriptors, data."""
    header_size = 24
    id_offset = header_size
    desc_offset = id_offset + NAME_SIZE
    stride = 16 + NAME_SIZE
    data_offset = desc_offset + stride * len(stats)
    out = bytearray(struct.pack("<6I", 0, NAME_SIZE, len(stats), id_offset, desc_offset, data_offset))
    out += b"kvm-42/vcpu-0".ljust(NAME_SIZE, b"\0")
    data = bytearray()
    for name, flags, size, _values in stats:
        out += struct.pack("<IhHII", flags, 0, size, len(data), 0) + name.encode().ljust(NAME_SIZE, b"\0")
        data += b"\0" * (8 * size)
    offset = 0
    for _name, _flags, size, values in stats:
        struct.pack_into(f"<{size}Q", data, offset, *values)
        offset += 8 * size
    return bytes(out + data)


def test_parse_scalars_and_histograms() -> None:
    raw = _stats_file(
        [("exits", 0x0, 1, [7]), ("halt_wait_hist", 0x4 | 0x100, 3, [1, 2, 3]), ("blocking", 0x41, 1, [1])]
    )
    layout = parse_layout(bytes_reader(raw))
    assert layout.id == "kvm-42/vcpu-0"
    assert [d.name for d in layout.descriptors] == ["exits", "halt_wait_hist", "blocking"]
    assert layout.descriptors[0].type == "cumulative"
    assert layout.descriptors[1].type == "log_hist" and layout.descriptors[1].base == 2
    assert layout.descriptors[2].type == "instant" and layout.descriptors[2].unit == "boolean"
    values = read_values(layout, bytes_reader(raw))
    assert values == {"exits": (7,), "halt_wait_hist": (1, 2, 3), "blocking": (1,)}


def test_delta_subtracts_cumulative_only() -> None:
    raw = _stats_file([("exits", 0x0, 1, [0]), ("blocking", 0x41, 1, [0])])
    layout = parse_layout(bytes_reader(raw))
    assert delta({"exits": 5, "blocking": 1}, {"exits": 12, "blocking": 0}, layout.descriptors) == {
        "exits": 7,
        "blocking": 0,
    }


def test_truncated_descriptor_block_is_an_error() -> None:
    raw = _stats_file([("exits", 0, 1, [1]), ("io_exits", 0, 1, [2])])
    with pytest.raises(StatsFormatError, match="descriptor block"):
        parse_layout(bytes_reader(raw[: 24 + NAME_SIZE + 20]))


def test_short_header_is_an_error() -> None:
    with pytest.raises(StatsFormatError, match="header"):
        parse_layout(bytes_reader(b"\0" * 10))
