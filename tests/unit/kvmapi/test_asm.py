"""The assembler's encodings against bytes from the Intel manual (and NASM's output for the same lines)."""

import pytest

from vmlab.kvmapi.asm import AsmError, assemble, evaluate


@pytest.mark.parametrize(
    ("line", "hexbytes"),
    [
        ("mov dx, 0x3f8", "ba f8 03"),
        ("mov al, 2", "b0 02"),
        ("add al, '0'", "80 c0 30"),
        ("out dx, al", "ee"),
        ("out dx, eax", "66 ef"),
        ("out 0xf4, al", "e6 f4"),
        ("in al, dx", "ec"),
        ("hlt", "f4"),
        ("cpuid", "0f a2"),
        ("rep outsb", "f3 6e"),
        ("mov ds, ax", "8e d8"),
        ("mov [8], al", "88 06 08 00"),
        ("mov byte [bx+si+3], 5", "c6 80 03 00 05"),
        ("mov al, [si]", "8a 04"),
        ("xor eax, eax", "66 31 c0"),
        ("dec ebp", "66 4d"),
        ("mov ebp, 1000", "66 bd e8 03 00 00"),
        ("lidt [0x1100]", "0f 01 1e 00 11"),
        ("ud2", "0f 0b"),
        ("stosb", "aa"),
    ],
)
def test_16bit_encodings(line: str, hexbytes: str) -> None:
    assert assemble(line).code == bytes.fromhex(hexbytes)


@pytest.mark.parametrize(
    ("line", "hexbytes"),
    [
        ("mov edx, 0x3f8", "ba f8 03 00 00"),
        ("mov [ebx+4], al", "88 83 04 00 00 00"),
        ("mov [esp], eax", "89 04 24"),
        ("mov ax, 1", "66 b8 01 00"),
    ],
)
def test_32bit_encodings(line: str, hexbytes: str) -> None:
    assert assemble("bits 32\n" + line).code == bytes.fromhex(hexbytes)


def test_labels_and_relative_jumps() -> None:
    a = assemble("start: nop\n dec bp\n jnz start\n loop start\n jmp start\nmsg: db 'hi', 10\n")
    assert a.labels == {"start": 0x1000, "msg": 0x100B}
    # jnz at 0x1002 (4 bytes) -> -6; loop at 0x1006 (2 bytes) -> -8; jmp at 0x1008 (3 bytes) -> -11
    assert a.code == bytes.fromhex("90 4d 0f 85 fa ff e2 f8 e9 f5 ff 68 69 0a")


def test_org_equ_times_and_expressions() -> None:
    a = assemble("org 0x7c00\nN equ 3\n mov cx, end - data\ndata: times N db 0xAA\nend:\n")
    assert a.org == 0x7C00
    assert a.code == bytes.fromhex("b9 03 00 aa aa aa")
    assert evaluate("(2 + 3) * 4 - 1", lambda s: 0) == 19
    assert evaluate("0x10 << 2 | 1", lambda s: 0) == 65


def test_bits32_program_reports_its_mode() -> None:
    assert assemble("bits 32\nhlt").bits == 32
    assert assemble("hlt").bits == 16


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("  frobnicate ax", "line 1: cannot encode 'frobnicate ax'"),
        ("nop\n  jmp nowhere", "line 2: unknown name 'nowhere'"),
        ("x: nop\nx: nop", "defined twice"),
        ("mov al, 300", "does not fit in 8 bits"),
        ("mov [bx], 1", "operand size unknown"),
        ("start: times 200 nop\n loop start", "reaches -128..127"),
        ("db 'open", "unterminated string"),
    ],
)
def test_errors_name_the_line(source: str, fragment: str) -> None:
    with pytest.raises(AsmError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        assemble(source, name="t.asm")


def test_error_is_a_usage_error_with_exit_code_2() -> None:
    with pytest.raises(AsmError) as info:
        assemble("bogus")
    assert info.value.exit_code == 2
