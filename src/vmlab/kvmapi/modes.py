"""The vCPU's starting mode, set through KVM_SET_SREGS as kvmtool and QEMU do: real mode, flat 32-bit
protected mode, or 64-bit long mode on identity-mapped page tables the VMM builds.
"""

from __future__ import annotations

import struct
from typing import Any

from vmlab.errors import BackendError
from vmlab.kvmapi import devices as dev
from vmlab.kvmapi.guest import Program
from vmlab.kvmapi.machine import Vcpu
from vmlab.kvmapi.structs import Segment, Sregs


def flat_segment(seg: Segment, code: bool, selector: int) -> None:
    """A flat 4 GiB code or data segment at ring 0, its hidden state loaded directly (no GDT)."""
    seg.base, seg.limit, seg.selector = 0, 0xFFFFFFFF, selector
    seg.type = 0xB if code else 0x3
    seg.present, seg.dpl, seg.db, seg.s, seg.l, seg.g, seg.avl = 1, 0, 1, 1, 0, 1, 0


CR0_PE, CR0_MP, CR0_ET, CR0_NE, CR0_WP, CR0_AM, CR0_PG = 1, 2, 0x10, 0x20, 1 << 16, 1 << 18, 1 << 31
CR4_PAE = 0x20
EFER_LME, EFER_LMA = 0x100, 0x400
PTE_P, PTE_RW = 1, 2


def build_page_tables(mem: Any) -> None:
    """Identity-map the first 2 MiB with 4 KiB pages: PML4[0] -> PDPT[0] -> PD[0] -> one PT of 512 PTEs.

    Four levels because this host's KVM (kvm_pvm) refuses to turn paging on in 32-bit mode (mov cr0
    with PG raises #GP, plain and PAE alike): long mode, entered by the VMM through KVM_SET_SREGS as
    kvmtool and QEMU do for a 64-bit kernel, is the paging mode that runs here. The guest finds the PTE
    of linear address X at dev.PT_ADDR + (X >> 12) * 8 (see devices.py).
    """

    mem[dev.PML4_ADDR : dev.PT_ADDR + 0x1000] = bytes(dev.PT_ADDR + 0x1000 - dev.PML4_ADDR)
    struct.pack_into("<Q", mem, dev.PML4_ADDR, dev.PDPT_ADDR | PTE_P | PTE_RW)
    struct.pack_into("<Q", mem, dev.PDPT_ADDR, dev.PD_ADDR | PTE_P | PTE_RW)
    struct.pack_into("<Q", mem, dev.PD_ADDR, dev.PT_ADDR | PTE_P | PTE_RW)
    for i in range(512):
        struct.pack_into("<Q", mem, dev.PT_ADDR + 8 * i, (i << 12) | PTE_P | PTE_RW)


def set_mode(vcpu: Vcpu, program: Program, mem: Any = None) -> None:
    """Real mode with CS=DS=ES=0 and a stack below 0x9F000, flat 32-bit protected mode, or 64-bit long
    mode with paging on identity-mapped page tables the VMM builds (`bits 64`).

    In protected mode the VMM loads the hidden segment state directly (KVM_SET_SREGS), so no GDT is
    needed; the IDT is empty (limit 0), so any exception escalates to a triple fault (SHUTDOWN).
    """
    sregs: Sregs = vcpu.get_sregs()
    if program.bits == 64:
        if mem is None:
            raise BackendError("a 64-bit guest needs its page tables in guest memory")
        build_page_tables(mem)
        sregs.cr3 = dev.PML4_ADDR
        sregs.cr4 = CR4_PAE
        sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG
        sregs.efer = EFER_LME | EFER_LMA
        flat_segment(sregs.cs, True, 0x08)
        sregs.cs.l, sregs.cs.db = 1, 0
        for seg in (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
            flat_segment(seg, False, 0x10)
        sregs.idt.base, sregs.idt.limit = 0, 0
        sregs.gdt.base, sregs.gdt.limit = 0, 0
        sp = dev.STACK_SEGMENT * 16 + dev.STACK_POINTER
    elif program.bits == 32:
        sregs.cr0 |= 1
        flat_segment(sregs.cs, True, 0x08)
        for seg in (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
            flat_segment(seg, False, 0x10)
        sregs.idt.base, sregs.idt.limit = 0, 0
        sregs.gdt.base, sregs.gdt.limit = 0, 0
        sp = dev.STACK_SEGMENT * 16 + dev.STACK_POINTER
    else:
        for seg in (sregs.cs, sregs.ds, sregs.es, sregs.fs, sregs.gs):
            seg.base, seg.selector = 0, 0
        sregs.ss.base, sregs.ss.selector = dev.STACK_SEGMENT * 16, dev.STACK_SEGMENT
        sp = dev.STACK_POINTER
    vcpu.set_sregs(sregs)
    regs = vcpu.get_regs()
    regs.rip, regs.rflags, regs.rsp = program.entry, 0x2, sp
    vcpu.set_regs(regs)
