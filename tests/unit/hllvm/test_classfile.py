"""The class-file writer, judged by the real JDK: javap disassembles what we wrote, java verifies it.

Expected bytecode and messages come from the JVM spec (opcode table, JVMS 6.5) and HotSpot's wording,
not from the writer.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from vmlab.hllvm.classfile import builtin_classes
from vmlab.hllvm.verify import class_info, run_class

pytestmark = pytest.mark.java

EXPECTED_CODE = {  # javap -c mnemonics of main, per JVMS 6.5
    "GoodAdd": ["iconst_1", "iconst_2", "iadd", "istore_1", "getstatic", "ldc", "invokevirtual", "return"],
    "BadAddType": ["fconst_1", "iconst_1", "iadd", "pop", "return"],
    "StackUnderflow": ["iconst_1", "iadd", "pop", "return"],
}


def _write(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for c in builtin_classes():
        p = tmp_path / f"{c.name}.class"
        p.write_bytes(c.data)
        out[c.name] = p
    return out


def test_javap_reads_what_we_wrote(tmp_path: Path, tool: Callable[[str], str]) -> None:
    javap = tool("javap")
    paths = _write(tmp_path)
    for name, want in EXPECTED_CODE.items():
        text = subprocess.run(
            [javap, "-c", "-v", str(paths[name])], capture_output=True, text=True, check=True
        ).stdout
        assert "major version: 52" in text
        ops = [
            ln.split(":", 1)[1].split()[0]
            for ln in text.splitlines()
            if ln.strip()[:1].isdigit() and ": " in ln
        ]
        assert ops == want, name
    text = subprocess.run([javap, "-c", str(paths["BadBranch"])], capture_output=True, text=True).stdout
    assert "goto          3" in text  # goto at 1, offset +2: target 3 (JVMS 6.5 goto)


def test_class_info_reads_javac_output(tmp_path: Path, tool: Callable[[str], str]) -> None:
    javac = tool("javac")
    src = tmp_path / "p" / "Hello.java"
    src.parent.mkdir()
    src.write_text('package p; public class Hello { long x = 1L; double d = 2.0; String s = "s"; }')
    subprocess.run([javac, "--release", "17", "-d", str(tmp_path / "out"), str(src)], check=True)
    name, major = class_info((tmp_path / "out" / "p" / "Hello.class").read_bytes())
    assert (name, major) == ("p.Hello", 61)  # Java 17 = class-file version 61 (JVMS 4.1 table 4.1-A)


@pytest.mark.slow
def test_jvm_verdicts(tmp_path: Path, tool: Callable[[str], str]) -> None:
    tool("java")
    paths = _write(tmp_path)
    want = {  # HotSpot's messages: classfile/verifier.cpp (type checker), check_code.c (inference)
        "GoodAdd": ("accepted", ""),
        "BadAddType": ("rejected", "Bad type on operand stack"),
        "StackUnderflow": ("rejected", "Operand stack underflow"),
        "BadBranch": ("rejected", "Illegal target of jump or branch"),
        "BadBranchTypeCheck": ("rejected", "Expecting a stackmap frame at branch target 3"),
    }
    assert set(want) == {c.name for c in builtin_classes()}
    for name, (status, message) in want.items():
        v = run_class(paths[name])
        assert v.status == status, (name, v)
        assert message in v.message, (name, v.message)
    good = run_class(paths["GoodAdd"])
    assert good.stdout == "verified and ran\n"
    assert run_class(paths["BadAddType"]).reason.startswith("Type float")
