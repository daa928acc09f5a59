"""The paging guests: 64-bit long mode on page tables the VMM builds (vmlab.kvmapi.modes)."""

from __future__ import annotations

from vmlab.errors import UsageError
from vmlab.kvmapi import devices as dev
from vmlab.kvmapi.guest import DEFAULT_N, Program, assemble_program

# This host's KVM refuses paging in 32-bit mode (see modes.build_page_tables), so these guests are
# `bits 64`.
# The user-space exits are fixed (1 HLT, or 1 IO for ptwrite); what differs between hosts is what the
# kernel does for them: its stats fd counts page faults (pf_*), TLB flushes and invlpg.

PAGE_ALIAS = 0x60000  # the frame ptwrite maps every page to


def pages_n(n: int) -> int:
    if not 1 <= n <= dev.MAX_PAGES:
        raise UsageError(f"{n} pages is out of range", hint=f"use 1..{dev.MAX_PAGES} (0x20000-0x5FFFF)")
    return n


def pages(n: int = 32) -> Program:
    n = pages_n(n)
    src = f"""\
bits 64
; Touch {n} fresh pages with paging on: one store each. The VMM's page tables map them, but the host
; has not yet: the first touch faults in the kernel (EPT violation, or a shadow page-table fault).
    mov eax, {dev.PAGES_BASE:#x}
    mov ecx, {n}
again:
    mov dword [rax], ecx  ; first touch of this page
    add eax, 0x1000
    dec ecx
    jnz again
    hlt                   ; the only exit to user space
"""
    return assemble_program(
        "pages", f"touch {n} fresh pages in long mode with paging (1 HLT)", src, {"HLT": 1}
    )


def cr3_writes(n: int = DEFAULT_N) -> Program:
    src = f"""\
bits 64
; {n} writes of CR3 (reload the same page-table root): each flushes the guest's TLB. Without nested
; paging the hypervisor must trap every one to switch its shadow page tables; with EPT/NPT it need not.
    mov ecx, {n}
again:
    mov rax, cr3
    mov cr3, rax          ; a CR3 write
    dec ecx
    jnz again
    hlt
"""
    return assemble_program(
        "cr3", f"{n} CR3 writes in long mode (1 HLT; the kernel's counters differ by host)", src, {"HLT": 1}
    )


def invlpgs(n: int = 32) -> Program:
    n = pages_n(n)
    src = f"""\
bits 64
; Touch {n} pages and invalidate each one's TLB entry with invlpg: with shadow paging KVM traps invlpg
; to drop the shadow entry (its stats fd counts `invlpg`); with EPT/NPT invlpg runs in the guest.
    mov eax, {dev.PAGES_BASE:#x}
    mov ecx, {n}
again:
    mov dword [rax], ecx
    invlpg [rax]
    add eax, 0x1000
    dec ecx
    jnz again
    hlt
"""
    return assemble_program("invlpg", f"touch and invlpg {n} pages (1 HLT)", src, {"HLT": 1})


def ptwrite(n: int = 32) -> Program:
    n = pages_n(n)
    pte = dev.PT_ADDR + (dev.PAGES_BASE >> 12) * 8
    src = f"""\
bits 64
; The guest edits its own page tables: {n} PTEs are pointed at one frame ({PAGE_ALIAS:#x}), each followed
; by invlpg and a store through the new mapping. A shadow-paging hypervisor write-protects guest page
; tables and must trap each of these PTE writes; with EPT/NPT they are ordinary stores.
    mov eax, {dev.PAGES_BASE:#x}   ; linear page i
    mov edx, {pte:#x}     ; its PTE (PT at {dev.PT_ADDR:#x}, 8 bytes per page)
    mov ecx, {n}
again:
    mov dword [rdx], {PAGE_ALIAS | 3:#x}  ; PTE: present, writable, frame {PAGE_ALIAS:#x}
    invlpg [rax]          ; forget the old translation
    mov dword [rax], ecx  ; this store lands in frame {PAGE_ALIAS:#x}
    add eax, 0x1000
    add edx, 8
    dec ecx
    jnz again
    mov eax, [{PAGE_ALIAS:#x}]     ; read the frame through its identity mapping: the last value, 1
    out {dev.DEBUG_EXIT_PORT:#x}, al       ; exit value 1 proves the remapping took effect
"""
    return assemble_program(
        "ptwrite", f"remap {n} PTEs to one frame, invlpg, store (1 IO, exit value 1)", src, {"IO": 1}, ""
    )
