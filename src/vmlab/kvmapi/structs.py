"""ctypes mirrors of the x86 KVM structures this VMM passes through ioctls.

Sizes and offsets follow <linux/kvm.h> and <asm/kvm.h>; tests pin them (kvm_regs 144 bytes, kvm_sregs
312, kvm_userspace_memory_region 32) against the headers of the machine.
"""

from __future__ import annotations

import ctypes

u8, u16, u32, u64, s16 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int16


class UserspaceMemoryRegion(ctypes.Structure):
    _fields_ = [
        ("slot", u32),
        ("flags", u32),
        ("guest_phys_addr", u64),
        ("memory_size", u64),
        ("userspace_addr", u64),
    ]


class Regs(ctypes.Structure):
    _fields_ = [
        (name, u64)
        for name in (
            "rax",
            "rbx",
            "rcx",
            "rdx",
            "rsi",
            "rdi",
            "rsp",
            "rbp",
            "r8",
            "r9",
            "r10",
            "r11",
            "r12",
            "r13",
            "r14",
            "r15",
            "rip",
            "rflags",
        )
    ]


class Segment(ctypes.Structure):
    _fields_ = [
        ("base", u64),
        ("limit", u32),
        ("selector", u16),
        ("type", u8),
        ("present", u8),
        ("dpl", u8),
        ("db", u8),
        ("s", u8),
        ("l", u8),
        ("g", u8),
        ("avl", u8),
        ("unusable", u8),
        ("padding", u8),
    ]


class DTable(ctypes.Structure):
    _fields_ = [("base", u64), ("limit", u16), ("padding", u16 * 3)]


KVM_NR_INTERRUPTS = 256


class Sregs(ctypes.Structure):
    _fields_ = [
        ("cs", Segment),
        ("ds", Segment),
        ("es", Segment),
        ("fs", Segment),
        ("gs", Segment),
        ("ss", Segment),
        ("tr", Segment),
        ("ldt", Segment),
        ("gdt", DTable),
        ("idt", DTable),
        ("cr0", u64),
        ("cr2", u64),
        ("cr3", u64),
        ("cr4", u64),
        ("cr8", u64),
        ("efer", u64),
        ("apic_base", u64),
        ("interrupt_bitmap", u64 * ((KVM_NR_INTERRUPTS + 63) // 64)),
    ]


class MpState(ctypes.Structure):
    """struct kvm_mp_state: 0 = RUNNABLE, 1 = UNINITIALIZED (an AP waiting for INIT/SIPI), 3 = HALTED."""

    _fields_ = [("mp_state", u32)]


KVM_MP_STATE_RUNNABLE = 0


class StatsHeader(ctypes.Structure):
    """struct kvm_stats_header: the first 24 bytes of a stats fd."""

    _fields_ = [
        ("flags", u32),
        ("name_size", u32),
        ("num_desc", u32),
        ("id_offset", u32),
        ("desc_offset", u32),
        ("data_offset", u32),
    ]


class StatsDesc(ctypes.Structure):
    """struct kvm_stats_desc without its trailing name[name_size]."""

    _fields_ = [
        ("flags", u32),
        ("exponent", s16),
        ("size", u16),
        ("offset", u32),
        ("bucket_size", u32),
    ]


# struct kvm_run: fixed header, then a 256-byte union at offset 32 (x86, no s390 fields).
KVM_RUN_EXIT_REASON_OFFSET = 8
KVM_RUN_IMMEDIATE_EXIT_OFFSET = 1
KVM_RUN_UNION_OFFSET = 32
KVM_RUN_SIZE = 2352
