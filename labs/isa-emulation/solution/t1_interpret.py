"""Task 1: a decode-and-dispatch interpreter. Your engine for `--input t1=FILE`.

    vmlab isa run --scenario 3 --engine-module t1_interpret.py      # one scenario against the oracle
    vmlab lab run isa-emulation --task t1-interpret --input t1=t1_interpret.py -o r.json
    vmlab check r.json

run(code, a, l) gets the program's bytes and the initial A and L and returns (final A, final L,
executed instructions with HALT counted).

The machine: IP indexes `code` and starts at 0. Opcodes: 0 HALT (stop), 1 CLRA (A=0), 2 INC3A (A+=3),
3 DECA (A-=1), 4 SETL (L=A), 5 BACK7 (L-=1; if L>0 jump back by 7 instructions, i.e. to the first of
the 6 instructions before the BACK7; else fall through).
"""

from __future__ import annotations


def run(code: bytes, a: int, l: int) -> tuple[int, int, int]:  # noqa: E741
    ip = 0
    executed = 0
    while True:
        op = code[ip]
        ip += 1
        executed += 1
        if op == 0:  # HALT
            return a, l, executed
        if op == 1:
            a = 0
        elif op == 2:
            a += 3
        elif op == 3:
            a -= 1
        elif op == 4:
            l = a
        else:
            l -= 1
            if l > 0:
                ip -= 7
