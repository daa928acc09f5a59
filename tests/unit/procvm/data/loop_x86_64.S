# A hand-counted guest for the instruction counters: no libc, no loader, so every executed
# instruction is one of these. With N = 1000 iterations of the 4-instruction body:
#   1 (mov) + 4 * 1000 (body) + 3 (exit) = 4004 guest instructions.
# Build: gcc -nostdlib -static -o loop_x86_64 loop_x86_64.S
    .globl _start
    .text
_start:
    mov $1000, %ecx
1:  add $1, %rax
    add %rax, %rbx
    dec %ecx
    jnz 1b
    mov $60, %eax
    xor %edi, %edi
    syscall
