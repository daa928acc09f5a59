"""ioctl numbers and struct layouts, pinned to values printed by a C program built against this
machine's <linux/kvm.h> (linux-libc-dev 6.1): a wrong field shows up as a wrong number here."""

import ctypes

import pytest

from vmlab.kvmapi import ioctl, structs


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KVM_GET_API_VERSION", 0xAE00),
        ("KVM_CREATE_VM", 0xAE01),
        ("KVM_CHECK_EXTENSION", 0xAE03),
        ("KVM_GET_VCPU_MMAP_SIZE", 0xAE04),
        ("KVM_CREATE_VCPU", 0xAE41),
        ("KVM_SET_USER_MEMORY_REGION", 0x4020AE46),
        ("KVM_SET_TSS_ADDR", 0xAE47),
        ("KVM_RUN", 0xAE80),
        ("KVM_GET_REGS", 0x8090AE81),
        ("KVM_SET_REGS", 0x4090AE82),
        ("KVM_GET_SREGS", 0x8138AE83),
        ("KVM_SET_SREGS", 0x4138AE84),
        ("KVM_GET_STATS_FD", 0xAECE),
    ],
)
def test_ioctl_numbers(name: str, value: int) -> None:
    assert getattr(ioctl, name) == value


@pytest.mark.parametrize(
    ("ctype", "size"),
    [
        (structs.Regs, 144),
        (structs.Sregs, 312),
        (structs.Segment, 24),
        (structs.DTable, 16),
        (structs.UserspaceMemoryRegion, 32),
        (structs.StatsHeader, 24),
        (structs.StatsDesc, 16),
    ],
)
def test_struct_sizes(ctype: type[ctypes.Structure], size: int) -> None:
    assert ctypes.sizeof(ctype) == size


def test_sregs_field_offsets() -> None:
    assert structs.Sregs.gdt.offset == 8 * 24
    assert structs.Sregs.cr0.offset == 8 * 24 + 2 * 16
    assert structs.Sregs.interrupt_bitmap.offset == 312 - 32


def test_ioctl_size_overflow_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        ioctl._ioc(ioctl._IOC_READ, ioctl.KVMIO, 1, 1 << 14)
