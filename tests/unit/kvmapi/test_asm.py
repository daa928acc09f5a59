"""The assembler's encodings: bytes from the Intel manual's tables, decoded again by GNU objdump.

The expected bytes are the manual's general forms, which this assembler always picks (full-width
displacements, ModRM forms): NASM would choose shorter forms for some lines (`04 30` for
`add al, '0'`, a disp8 for `[bx+si+3]`), so they are not NASM's output. objdump, an independent
decoder, checks that each byte string is exactly one instruction meaning the same as the line.
"""

import re
import shutil
import subprocess
from pathlib import Path

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


def _normal(text: str) -> str:
    """One spelling for both sides: lower case, numbers in decimal, no size words or padding."""
    text = text.lower().replace("byte ptr ", "").replace("byte ", "").replace("dword ptr ", "")
    text = re.sub(r"'(.)'", lambda m: str(ord(m.group(1))), text)
    text = re.sub(r"0x[0-9a-f]+", lambda m: str(int(m.group(0), 16)), text)
    text = re.sub(r"\b(ds|es):", "", text)
    return re.sub(r"\s+", "", text)


# where objdump spells the same instruction differently (string forms, direct addresses)
OBJDUMP_SAYS = {
    "rep outsb": "rep outs dx,[si]",
    "stosb": "stos es:[di],al",
    "lidt [0x1100]": "lidtw ds:0x1100",  # a direct address is printed as ds:ADDR, without brackets
    "mov [8], al": "mov ds:0x8,al",
}


@pytest.mark.parametrize(
    "line",
    [
        "mov dx, 0x3f8", "mov al, 2", "add al, '0'", "out dx, al", "out dx, eax", "out 0xf4, al",
        "in al, dx", "hlt", "cpuid", "rep outsb", "mov ds, ax", "mov [8], al", "mov byte [bx+si+3], 5",
        "mov al, [si]", "xor eax, eax", "dec ebp", "mov ebp, 1000", "lidt [0x1100]", "ud2", "stosb",
    ],
)  # fmt: skip
def test_objdump_decodes_the_same_instruction(line: str, tmp_path: Path) -> None:
    if shutil.which("objdump") is None:
        from tests.conftest import unavailable

        unavailable("objdump", "binutils is not installed (make setup installs it with build-essential)")
    code = assemble(line).code
    blob = tmp_path / "code.bin"
    blob.write_bytes(code)
    argv = ["objdump", "-D", "-b", "binary", "-mi8086", "-M", "intel", str(blob)]
    listing = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    decoded = [ln.split("\t") for ln in listing.splitlines() if re.match(r"\s+[0-9a-f]+:\t", ln)]
    assert len(decoded) == 1, listing  # exactly one instruction, and it used every byte
    assert bytes.fromhex(decoded[0][1]) == code
    assert _normal(decoded[0][2]) == _normal(OBJDUMP_SAYS.get(line, line))


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


# Long mode and paging (Intel SDM vol. 2): MOV to/from CRn is 0F 22 /r and 0F 20 /r with mod=11, the CR
# in reg and the GPR in r/m; INVLPG m is 0F 01 /7. In 64-bit mode the operand size stays 32 (no 66),
# 40-4F are REX prefixes (so inc/dec take FF /0, FF /1), and mod=00 r/m=101 means RIP-relative: an
# absolute [disp32] takes r/m=100 with SIB 25 (no base, no index).
@pytest.mark.parametrize(
    ("line", "hexbytes"),
    [
        ("mov rax, cr3", "0f 20 d8"),
        ("mov cr3, rax", "0f 22 d8"),
        ("mov cr0, rbx", "0f 22 c3"),
        ("invlpg [rax]", "0f 01 38"),
        ("invlpg [0x30000]", "0f 01 3c 25 00 00 03 00"),
        ("mov dword [rdx], 0x60003", "c7 02 03 00 06 00"),
        ("mov [0x7000], ebx", "89 1c 25 00 70 00 00"),
        ("mov eax, [0x60000]", "8b 04 25 00 00 06 00"),
        ("dec ecx", "ff c9"),
        ("add eax, 0x1000", "81 c0 00 10 00 00"),
        ("mov ax, 1", "66 b8 01 00"),
    ],
)
def test_64bit_encodings(line: str, hexbytes: str) -> None:
    assert assemble("bits 64\n" + line).code == bytes.fromhex(hexbytes)


@pytest.mark.parametrize(
    ("line", "hexbytes"),
    [("mov cr3, eax", "0f 22 d8"), ("mov eax, cr0", "0f 20 c0"), ("invlpg [eax]", "0f 01 38")],
)
def test_control_registers_in_32bit_mode(line: str, hexbytes: str) -> None:
    assert assemble("bits 32\n" + line).code == bytes.fromhex(hexbytes)


# objdump's spelling in 64-bit Intel syntax where it differs from the source line
OBJDUMP_64 = {
    "invlpg [rax]": "invlpg byte ptr [rax]",
    "invlpg [0x30000]": "invlpg byte ptr ds:0x30000",
    "mov [0x7000], ebx": "mov dword ptr ds:0x7000,ebx",
    "mov eax, [0x60000]": "mov eax,dword ptr ds:0x60000",
    "mov dword [rdx], 0x60003": "mov dword ptr [rdx],0x60003",
}


@pytest.mark.parametrize(
    "line",
    ["mov rax, cr3", "mov cr3, rax", "invlpg [rax]", "invlpg [0x30000]", "mov dword [rdx], 0x60003",
     "mov [0x7000], ebx", "mov eax, [0x60000]", "dec ecx"],
)  # fmt: skip
def test_objdump_decodes_the_same_64bit_instruction(line: str, tmp_path: Path) -> None:
    if shutil.which("objdump") is None:
        from tests.conftest import unavailable

        unavailable("objdump", "binutils is not installed (make setup installs it with build-essential)")
    code = assemble("bits 64\n" + line).code
    blob = tmp_path / "code.bin"
    blob.write_bytes(code)
    argv = ["objdump", "-D", "-b", "binary", "-mi386:x86-64", "-M", "intel", str(blob)]
    listing = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rows = [ln.split("\t") for ln in listing.splitlines() if re.match(r"\s+[0-9a-f]+:\t", ln)]
    decoded = [r for r in rows if len(r) == 3]  # objdump continues long byte strings on a line of their own
    assert len(decoded) == 1, listing
    assert bytes.fromhex("".join(r[1] for r in rows)) == code
    said = re.sub(r"\s+", " ", decoded[0][2]).strip().lower().replace(", ", ",")
    want = OBJDUMP_64.get(line, line).replace(", ", ",")
    assert said == want


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("bits 64\n mov cr3, eax", "64-bit register"),
        ("bits 64\n mov [eax], ebx", "needs a 64-bit register"),
        ("bits 64\n push eax", "cannot encode"),
        ("bits 8\n nop", "bits takes 16, 32 or 64"),
    ],
)
def test_64bit_errors(source: str, fragment: str) -> None:
    with pytest.raises(AsmError, match=fragment):
        assemble(source, name="t.asm")
