// The same hand-counted guest for aarch64 (qemu-aarch64): 1 + 4 * 1000 + 3 = 4004 instructions.
// Translated blocks: [mov, add, add, subs, b.ne] [add, add, subs, b.ne] [mov, mov, svc] = 3 blocks,
// 12 instructions, 48 bytes; executed (with -d nochain every execution is logged): 1 + 999 + 1 = 1001.
// Build: aarch64-linux-gnu-gcc -nostdlib -static -o loop_aarch64 loop_aarch64.S
    .globl _start
    .text
_start:
    mov x1, #1000
1:  add x2, x2, #1
    add x3, x3, x2
    subs x1, x1, #1
    b.ne 1b
    mov x8, #93
    mov x0, #0
    svc #0
