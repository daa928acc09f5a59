"""Guests with paging on the real /dev/kvm: exact user-space exits, the kernel's paging counters, and
what this host cannot do (measured, then skipped with the reason).

Hand counts: a page touch, a CR3 write, an invlpg and a PTE store are all handled in the kernel (or by
the CPU with EPT/NPT), so pages, cr3 and invlpg reach user space once, at hlt; ptwrite once, at its
OUT to 0xf4, whose value is what it reads back through the remapped frame: the countdown's last store, 1.
"""

import struct
from pathlib import Path

import pytest

from vmlab.kvmapi.guest import Program
from vmlab.kvmapi.programs import builtin
from vmlab.kvmapi.vmm import GuestFault, Limits, run_program

pytestmark = pytest.mark.kvm

N_PAGES = 24


@pytest.mark.parametrize(
    ("name", "n", "exits"),
    [("pages", N_PAGES, {"HLT": 1}), ("cr3", 500, {"HLT": 1}), ("invlpg", N_PAGES, {"HLT": 1})],
)
def test_paging_guests_exit_once(
    kvm_device: str, no_leaks: None, name: str, n: int, exits: dict[str, int]
) -> None:
    r = run_program(builtin(name, n), limits=Limits(wall_s=30))
    assert dict(r.exits) == exits
    assert r.stop == "HLT"


def test_ptwrite_remaps_pages_through_the_guests_own_ptes(kvm_device: str, no_leaks: None) -> None:
    r = run_program(builtin("ptwrite", N_PAGES), limits=Limits(wall_s=30))
    assert dict(r.exits) == {"IO": 1}
    assert (r.stop, r.exit_value) == ("debug-exit", 1)


def test_pages_walks_every_page(kvm_device: str) -> None:
    """The loop adds 0x1000 to eax n times from 0x20000 and counts ecx down from n to 0, so at hlt the
    registers the VMM reads back are rax = 0x20000 + n * 0x1000 and rcx = 0."""
    r = run_program(builtin("pages", N_PAGES), limits=Limits(wall_s=30))
    assert r.regs["rcx"] == 0 and r.regs["rax"] == 0x20000 + N_PAGES * 0x1000


def test_invlpg_counted_by_the_kernel_here(kvm_device: str) -> None:
    """Where KVM traps or emulates invlpg (shadow paging, or this host's instruction emulator) its stats
    fd counts one per instruction; with EPT/NPT the guest's invlpg does not exit at all (0)."""
    r = run_program(builtin("invlpg", N_PAGES), limits=Limits(wall_s=30))
    assert r.kernel_stats is not None
    assert r.kernel_stats["invlpg"] in (0, N_PAGES)


def _module_param(path: str) -> str | None:
    p = Path(path)
    return p.read_text().strip() if p.is_file() else None


def test_invlpg_with_and_without_nested_paging(kvm_device: str) -> None:
    """On a VT-x/AMD-V host the kernel module says whether EPT/NPT is on: with it, invlpg never exits
    (the kernel counts 0); with ept=0/npt=0 (shadow paging) it traps once per instruction (N)."""
    ept = _module_param("/sys/module/kvm_intel/parameters/ept") or _module_param(
        "/sys/module/kvm_amd/parameters/npt"
    )
    if ept is None:
        pytest.skip(
            "no kvm_intel/kvm_amd module on this host (its KVM is kvm_pvm, which runs guest code in the "
            "kernel's instruction emulator): no EPT/NPT setting to compare"
        )
    r = run_program(builtin("invlpg", N_PAGES), limits=Limits(wall_s=30))
    assert r.kernel_stats is not None
    assert r.kernel_stats["invlpg"] == (0 if ept in ("Y", "1") else N_PAGES)


def test_32bit_paging(kvm_device: str) -> None:
    """Paging in 32-bit protected mode (non-PAE, 4 KiB pages): the guest loads CR3 and sets CR0.PG.
    Measured here: kvm_pvm raises #GP on that mov to CR0 (triple fault, no IDT), plain and PAE alike,
    which is why the paging guests run in long mode. Elsewhere it must work: 1 IO, then the hlt."""
    pd, pt = 0x20000, 0x21000
    code = bytes.fromhex(
        "b8 00 00 02 00"  # mov eax, 0x20000 (the page directory)
        "0f 22 d8"  # mov cr3, eax
        "0f 20 c0"  # mov eax, cr0
        "0d 00 00 00 80"  # or eax, 0x80000000 (PG)
        "0f 22 c0"  # mov cr0, eax
        "e6 80"  # out 0x80, al: paging is on
        "c7 05 00 00 03 00 11 00 00 00"  # mov dword [0x30000], 0x11 through the page tables
        "f4"  # hlt
    )
    tables = bytearray(0x2000)
    struct.pack_into("<I", tables, 0, pt | 3)
    for i in range(1024):
        struct.pack_into("<I", tables, 0x1000 + 4 * i, (i << 12) | 3)
    program = Program("paging32", code, "32-bit paging", bits=32)
    try:
        r = run_program(program, limits=Limits(wall_s=10), preload={pd: bytes(tables)})
    except GuestFault as e:
        if e.run.stop == "SHUTDOWN" and e.run.total_exits == 1:
            pytest.skip(f"this host's KVM refuses 32-bit paging: {e}")
        raise
    assert dict(r.exits) == {"IO": 1, "HLT": 1}
