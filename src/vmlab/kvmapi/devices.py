"""The VMM-side device models and the guest memory layout they live in.

Guest-physical layout (real mode reaches the first MiB):
    0x00000-0x9FFFF  RAM (640 KiB, "conventional memory"); programs load at 0x1000, stack below 0x9F000
    0xD0000-0xD0FFF  MMIO device (no memory slot there, so every access is a KVM_EXIT_MMIO)
Ports:
    0x3F8  serial transmit register: a byte written here is guest output
    0x3FD  serial line status: reads 0x60 (transmitter empty), so polling guests go on
    0x0F4  debug exit: writing a value stops the guest with that exit value (like QEMU's isa-debug-exit)
    0x510  hypercall: the value written (16 or 32 bits) is the guest-physical address of a request
           block {u16 nr; u16 len; u8 data[len]}; nr 1 = console write. One exit moves a whole buffer:
           the paravirtual path of lguest and virtio, where the guest asks instead of being trapped.
Page tables of 64-bit guests (built by the VMM, identity map of 0-2 MiB in 4 KiB pages):
    0x80000 PML4, 0x81000 PDPT, 0x82000 PD, 0x83000 PT (PTE of linear X at 0x83000 + (X >> 12) * 8)
    0x20000-0x5FFFF  the pages the paging programs touch (up to 64)
MMIO registers (offsets from 0xD0000): 0x0 console data (a written byte is guest output), 0x8 scratch
(stores the value; reads return it). Unknown ports read 0xFF and ignore writes, like an empty ISA bus.
"""

from __future__ import annotations

RAM_BASE = 0x0
RAM_SIZE = 0xA0000
LOAD_ADDR = 0x1000
STACK_SEGMENT = 0x9000
STACK_POINTER = 0xF000

PML4_ADDR = 0x80000
PDPT_ADDR = 0x81000
PD_ADDR = 0x82000
PT_ADDR = 0x83000
PAGES_BASE = 0x20000
MAX_PAGES = 64

MMIO_BASE = 0xD0000
MMIO_SIZE = 0x1000
MMIO_CONSOLE = 0x0
MMIO_SCRATCH = 0x8

SERIAL_PORT = 0x3F8
SERIAL_LSR = 0x3FD
DEBUG_EXIT_PORT = 0xF4
HYPERCALL_PORT = 0x510
POST_PORT = 0x80

HC_CONSOLE_WRITE = 1
HC_MAX_LEN = 0xFFFF

PORT_NAMES = {
    SERIAL_PORT: "serial",
    SERIAL_LSR: "serial-status",
    DEBUG_EXIT_PORT: "debug-exit",
    HYPERCALL_PORT: "hypercall",
    POST_PORT: "post",
}
