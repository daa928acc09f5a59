"""Decoding of struct kvm_run from synthetic buffers laid out as <linux/kvm.h> says."""

import struct

from vmlab.kvmapi.exits import (
    ExitReason,
    FailEntryExit,
    InternalErrorExit,
    IoExit,
    MmioExit,
    OtherExit,
    decode,
    reason_name,
)


def _run(reason: int, union: bytes) -> bytearray:
    buf = bytearray(2352)
    struct.pack_into("<I", buf, 8, reason)
    buf[32 : 32 + len(union)] = union
    return buf


def test_io_exit() -> None:
    code, info = decode(_run(2, struct.pack("<BBHIQ", 1, 1, 0x3F8, 1, 4096)))
    assert code == ExitReason.IO
    assert info == IoExit(direction=1, size=1, port=0x3F8, count=1, data_offset=4096)
    assert isinstance(info, IoExit) and info.is_out


def test_mmio_exit() -> None:
    code, info = decode(_run(6, struct.pack("<Q8sIB", 0xD0008, b"\x41" + bytes(7), 1, 1)))
    assert code == ExitReason.MMIO
    assert info == MmioExit(phys_addr=0xD0008, data=b"A" + bytes(7), length=1, is_write=True)


def test_internal_error_carries_suberror_and_data() -> None:
    code, info = decode(_run(17, struct.pack("<IIQQ", 1, 2, 0xAA, 0xBB)))
    assert code == ExitReason.INTERNAL_ERROR
    assert isinstance(info, InternalErrorExit)
    assert info.suberror == 1 and info.data == (0xAA, 0xBB)
    assert info.description.startswith("EMULATION")


def test_fail_entry() -> None:
    _, info = decode(_run(9, struct.pack("<QI", 0x21, 3)))
    assert info == FailEntryExit(0x21, 3)


def test_hlt_and_shutdown_have_no_payload() -> None:
    assert decode(_run(5, b"")) == (5, None)
    assert decode(_run(8, b"")) == (8, None)


def test_unknown_reason_is_named_and_raw_kept() -> None:
    code, info = decode(_run(99, struct.pack("<Q", 0x1234)))
    assert code == 99
    assert reason_name(code) == "UNKNOWN_99"
    assert info == OtherExit(0x1234)
    assert reason_name(5) == "HLT"
