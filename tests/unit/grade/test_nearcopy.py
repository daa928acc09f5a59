"""Near-copies of code and raw samples: copies that survive renaming and jitter are found, honest work
is not. Expected values come from the normalisation rules and the distance's definition worked out by
hand in the comments, and from real honest runs of this kit, never from the module's own output."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest

from vmlab.grade import nearcopy
from vmlab.grade.nearcopy import (
    CODE_THRESHOLD,
    PAIR_EVIDENCE,
    SAMPLE_THRESHOLD,
    NearCopy,
    code_near_copies,
    honest_log10_chance,
    jitter_bound,
    lab_boilerplate,
    robust_spread,
    sample_near_copies,
    sample_vectors,
    student_files,
    vector_distance,
)
from vmlab.labs.catalog import lab_path, load_lab
from vmlab.report.model import Experiment, InputRecord, Measurement, Report, Summary

ROOT = Path(__file__).resolve().parents[3]
HYPERCALL = ROOT / "tests" / "data" / "kvm-api" / "line_hypercall.asm"
KVM_SKELETON = ROOT / "labs" / "kvm-api" / "skeleton" / "line.asm"
ISA_SKELETON = ROOT / "labs" / "isa-emulation" / "skeleton" / "t1_interpret.py"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pair(
    tmp_path: Path, name: str, a: str, b: str, input_name: str = "program"
) -> dict[str, dict[str, Path]]:
    """Two hand-ins, s1 and s2, each with one file of the input."""
    return {
        "s1": {input_name: write(tmp_path / "s1" / name, a)},
        "s2": {input_name: write(tmp_path / "s2" / name, b)},
    }


def only(found: list[NearCopy]) -> NearCopy:
    assert len(found) == 1, found
    return found[0]


# ---- code: kvm-api guest programs ---------------------------------------------------------------

# line_hypercall.asm as another student would disguise it: every comment rewritten, blank lines and
# indentation changed, upper-case hex with NASM's h suffix. Code on lines 3, 4, 6, 7, 8.
HYPERCALL_DISGUISED = """\
;my solution (task own)
;put nr=1 just before the line so the line becomes the request block
        MOV   word [7FFEh],1
        mov   EAX,0x7ffe          ;   block address

        mov   dx,510h
        out   dx,eax              ; one exit
        HLT
"""

# An honest, independently written solution: copy {len, bytes} into a block of its own at 0x9000 with
# a loop (labels: next), put nr in front, one hypercall.
COPY_BLOCK = """\
; own: build the request block {nr, len, bytes} at 0x9000 myself, then one hypercall
    mov si, 0x8000        ; {len, bytes}
    mov di, 0x9002
    mov cx, [0x8000]
    add cx, 2             ; the length word too
next:
    mov al, [si]
    mov [di], al
    inc si
    inc di
    dec cx
    jnz next
    mov word [0x9000], 1  ; nr = 1
    mov eax, 0x9000
    mov dx, 0x510
    out dx, eax
    hlt
"""

# The same program by a copier: comments gone, the label renamed, layout changed.
COPY_BLOCK_RENAMED = """\
mov si,0x8000
mov di,0x9002
mov cx,[0x8000]
add cx,2
copy_loop:  mov al,[si]
            mov [di],al
            inc si
            inc di
            dec cx
            jnz copy_loop
mov word [0x9000],1
mov eax,0x9000
mov dx,0x510
out dx,eax
hlt
"""


def test_the_normalised_form_of_a_guest_program_is_as_the_rules_say() -> None:
    # By hand from the rules: comments and blanks dropped, mnemonics and registers kept, numbers in
    # decimal (0x7ffe = 32766, 0x510 = 1296), each line of code closed by ";".
    text, line_of = nearcopy.code._normalise_assembler(HYPERCALL.read_text(), "nasm")
    assert text == "movword[32766],1;moveax,32766;movdx,1296;outdx,eax;hlt;"
    assert (line_of[0], line_of[-1]) == (4, 8)  # the code is on lines 4-8 of the file
    # labels: a definition is L:, a reference V; "rep movsb" keeps its instruction
    assert nearcopy.code._normalise_assembler("top: rep movsb\n jnz top\n", "nasm")[0] == "L:repmovsb;jnzV;"


def test_a_disguised_copy_of_the_hypercall_solution_is_flagged(tmp_path: Path) -> None:
    # Only comments, layout, case and number notation differ, so both normalise to the same 55
    # characters (above): every k-gram of each is in the other, similarity 1.0 both ways.
    subs = pair(tmp_path, "line.asm", HYPERCALL.read_text(), HYPERCALL_DISGUISED)
    found = only(code_near_copies(subs, {"program": [KVM_SKELETON]}))
    assert (found.a, found.b, found.kind) == ("s1", "s2", "code")
    assert found.score == pytest.approx(1.0) and found.score >= CODE_THRESHOLD
    # the evidence names the input and the copied lines in both files
    assert found.evidence.startswith("program: s1's line.asm lines 4-8 ~ s2's line.asm lines 3-8")


def test_renamed_labels_and_a_stripped_layout_do_not_hide_a_copy(tmp_path: Path) -> None:
    subs = pair(tmp_path, "line.asm", COPY_BLOCK, COPY_BLOCK_RENAMED)
    found = only(code_near_copies(subs, {"program": [KVM_SKELETON]}))
    assert found.score == pytest.approx(1.0)


def test_independent_kvm_solutions_are_not_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subs = pair(tmp_path, "line.asm", HYPERCALL.read_text(), COPY_BLOCK)
    assert code_near_copies(subs, {"program": [KVM_SKELETON]}) == []
    # How close they are: all they share is the tail ";movdx,1296;outdx,eax;hlt;" (26 characters; the
    # "mov eax" lines differ in the address), 26 of the hypercall's 55, so 0.473 = 26 / 55.
    monkeypatch.setattr(nearcopy.code, "MIN_OVERLAP_KGRAMS", 0)
    found = only(code_near_copies(subs, {"program": [KVM_SKELETON]}, threshold=0.0))
    assert found.score == pytest.approx(26 / 55, abs=1e-3)


def test_the_skeleton_handed_in_unchanged_by_two_students_is_not_flagged(tmp_path: Path) -> None:
    skeleton = KVM_SKELETON.read_text()
    retouched = skeleton.replace("next", "again").replace("; ", ";; ")  # a label and comments changed
    subs = pair(tmp_path, "line.asm", skeleton, retouched)
    kvm = load_lab("kvm-api")
    boilerplate = lab_boilerplate(kvm, lab_path("kvm-api").parent)
    assert boilerplate == {"program": [KVM_SKELETON]}
    assert code_near_copies(subs, boilerplate) == []
    # without the skeleton subtracted, the two are (rightly) one program
    assert only(code_near_copies(subs, {})).score == pytest.approx(1.0)


def test_instructions_are_not_names(tmp_path: Path) -> None:
    # Pygments' NASM lexer calls every mnemonic Name.Function, which copydetect's own filter turns
    # into "F": mov/out/hlt would all look alike. Here they are kept: a program with other
    # instructions on the same operands shares no 20-character passage (every line differs).
    other = "    add word [0x7ffe], 1\n    sub eax, 0x7ffe\n    cmp dx, 0x510\n    in eax, dx\n    nop\n"
    assert code_near_copies(pair(tmp_path, "line.asm", HYPERCALL.read_text(), other), {}, threshold=0.0) == []


# ---- code: Python engines ------------------------------------------------------------------------

# The integration tests' honest engine (tests/integration/grade/conftest.py CORRECT_ENGINE), copied so
# that this file does not depend on a conftest.
CORRECT_ENGINE = '''\
def run(code, a, l):
    """A plain decode-and-dispatch loop with 32-bit wrap-around."""
    def w(x):
        x &= 0xFFFFFFFF
        return x - (1 << 32) if x & 0x80000000 else x
    ip = n = 0
    while True:
        op = code[ip]
        n += 1
        ip += 1
        if op == 0:
            return a, l, n
        if op == 1:
            a = 0
        elif op == 2:
            a = w(a + 3)
        elif op == 3:
            a = w(a - 1)
        elif op == 4:
            l = a
        elif op == 5:
            l = w(l - 1)
            if l > 0:
                ip -= 7
'''

# CORRECT_ENGINE with every identifier renamed, the docstring and comments rewritten, and the blank
# lines moved. Token for token the same program.
ENGINE_RENAMED = '''\
# my interpreter for task 1

def run(program, acc, loopreg):
    """Fetch, decode, execute; 32-bit wrap like the spec says."""

    def wrap32(value):
        value &= 0xFFFFFFFF   # keep 32 bits
        return value - (1 << 32) if value & 0x80000000 else value

    pc = count = 0
    while True:
        opcode = program[pc]
        count += 1
        pc += 1
        if opcode == 0:      # HALT
            return acc, loopreg, count
        if opcode == 1:      # CLRA
            acc = 0
        elif opcode == 2:    # INC3A
            acc = wrap32(acc + 3)
        elif opcode == 3:    # DECA
            acc = wrap32(acc - 1)
        elif opcode == 4:    # SETL
            loopreg = acc
        elif opcode == 5:    # BACK7
            loopreg = wrap32(loopreg - 1)
            if loopreg > 0:
                pc -= 7
'''

# Independently written: a handler table over a state dict.
ENGINE_TABLE = '''\
"""Task 1 with a dispatch table: each opcode is a small function of the machine state."""

MASK = (1 << 32) - 1


def signed(x):
    x &= MASK
    return x - (1 << 32) if x >= 1 << 31 else x


def _clra(st):
    st["a"] = 0


def _inc3a(st):
    st["a"] = signed(st["a"] + 3)


def _deca(st):
    st["a"] = signed(st["a"] - 1)


def _setl(st):
    st["l"] = st["a"]


def _back7(st):
    st["l"] = signed(st["l"] - 1)
    if st["l"] > 0:
        st["ip"] -= 7


HANDLERS = {1: _clra, 2: _inc3a, 3: _deca, 4: _setl, 5: _back7}


def run(code, a, l):
    st = {"a": a, "l": l, "ip": 0}
    steps = 0
    while True:
        op = code[st["ip"]]
        st["ip"] += 1
        steps += 1
        if op == 0:
            break
        HANDLERS[op](st)
    return st["a"], st["l"], steps
'''


def test_a_renamed_python_engine_is_flagged(tmp_path: Path) -> None:
    # Names become V (F for a def), comments go, the docstring becomes S: the token texts are equal.
    subs = pair(tmp_path, "engine.py", CORRECT_ENGINE, ENGINE_RENAMED, "t1")
    found = only(code_near_copies(subs, {"t1": [ISA_SKELETON]}))
    assert found.score == pytest.approx(1.0)
    assert found.evidence.startswith("t1: s1's engine.py lines 1-")


def test_independently_written_engines_are_not_flagged(tmp_path: Path) -> None:
    subs = pair(tmp_path, "engine.py", CORRECT_ENGINE, ENGINE_TABLE, "t1")
    assert code_near_copies(subs, {"t1": [ISA_SKELETON]}) == []


def test_isa_emulation_skeletons_count_as_boilerplate(tmp_path: Path) -> None:
    # isa-emulation declares no `default` (the reference engine stands in); its descriptions name
    # skeleton/t1_interpret.py ... skeleton/t6_superblock.py, one per task.
    lab_dir = lab_path("isa-emulation").parent
    boilerplate = lab_boilerplate(load_lab("isa-emulation"), lab_dir)
    assert sorted(boilerplate) == ["t1", "t2", "t3", "t4", "t5", "t6"]
    assert boilerplate["t1"] == [ISA_SKELETON]
    # two students who filled the skeleton's TODO differently, each keeping its loop
    skeleton = ISA_SKELETON.read_text()
    todo = skeleton[skeleton.index("        # TODO") :]
    a = skeleton.replace(todo, "        a, l, ip = step_a(op, a, l, ip)\n")
    b = skeleton.replace(todo, "        if op in TABLE:\n            TABLE[op]()\n")
    assert code_near_copies(pair(tmp_path, "t1.py", a, b, "t1"), boilerplate) == []


# ---- code: C, Java, Jasmin, GAS, machine code ------------------------------------------------------

C_ORIGINAL = """\
#include <stdio.h>
/* sum of squares below n */
static long squares(int n) {
    long total = 0;
    for (int i = 0; i < n; i++) {
        total += (long)i * i;
    }
    return total;
}

int main(int argc, char **argv) {
    int limit = argc > 1 ? 1000 : 10;
    printf("%ld\\n", squares(limit));
    return 0;
}
"""

C_RENAMED = """\
#include <stdio.h>
// my version
static long sq_sum(int count)
{
    long acc = 0;
    for (int k = 0; k < count; k++) { acc += (long)k * k; }
    return acc;
}
int main(int nargs, char **args)
{
    int upto = nargs > 1 ? 1000 : 10;   /* how far */
    printf("%ld\\n", sq_sum(upto));
    return 0;
}
"""

C_OTHER = """\
#include <stdio.h>
#include <string.h>

int main(void) {
    char line[256];
    unsigned checksum = 0;
    while (fgets(line, sizeof line, stdin)) {
        size_t len = strlen(line);
        for (size_t j = 0; j < len; ++j)
            checksum = checksum * 31u + (unsigned char)line[j];
    }
    printf("%08x\\n", checksum);
    return checksum == 0;
}
"""

JAVA_ORIGINAL = """\
/** Counts primes below a bound. */
public final class Primes {
    static boolean isPrime(int n) {
        if (n < 2) return false;
        for (int d = 2; d * d <= n; d++) {
            if (n % d == 0) return false;
        }
        return true;
    }

    public static void main(String[] args) {
        int count = 0;
        for (int i = 0; i < 10000; i++) {
            if (isPrime(i)) count++;
        }
        System.out.println(count);
    }
}
"""

JAVA_RENAMED = """\
// prime counter, my own
public final class CountPrimes {
    static boolean prime(int value) {
        if (value < 2) return false;
        for (int div = 2; div * div <= value; div++) { if (value % div == 0) return false; }
        return true;
    }
    public static void main(String[] argv) {
        int found = 0;
        for (int x = 0; x < 10000; x++) { if (prime(x)) found++; }
        System.out.println(found);
    }
}
"""

JAVA_OTHER = """\
import java.util.ArrayList;
import java.util.List;

public class Sieve {
    public static void main(String[] args) {
        boolean[] composite = new boolean[10000];
        List<Integer> primes = new ArrayList<>();
        for (int i = 2; i < composite.length; i++) {
            if (!composite[i]) {
                primes.add(i);
                for (long j = (long) i * i; j < composite.length; j += i) composite[(int) j] = true;
            }
        }
        System.out.println(primes.size());
    }
}
"""

JASMIN_ORIGINAL = """\
; counts down from 5
.class public Countdown
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 2
    .limit locals 2
    iconst_5
    istore_1
top:
    getstatic java/lang/System/out Ljava/io/PrintStream;
    iload_1
    invokevirtual java/io/PrintStream/println(I)V
    iinc 1 -1
    iload_1
    ifgt top
    return
.end method
"""

GAS_ORIGINAL = """\
# print the line, one byte per out
    movw $0x8002, %si
    movw (0x8000), %cx
    movw $0x3f8, %dx
next:
    lodsb
    outb %al, %dx
    loop next
    hlt
"""

HEX_ORIGINAL = "; mov word [0x7ffe], 1 ... hlt\nc7 06 fe 7f 01 00\n66 b8 fe 7f 00 00\nba 10 05\n66 ef\nf4\n"


@pytest.mark.parametrize(
    ("name", "original", "renamed"),
    [
        ("sq.c", C_ORIGINAL, C_RENAMED),
        ("Primes.java", JAVA_ORIGINAL, JAVA_RENAMED),
        (
            "Countdown.j",
            JASMIN_ORIGINAL,
            JASMIN_ORIGINAL.replace("top", "again").replace("Countdown", "Down"),
        ),
        ("line.s", GAS_ORIGINAL, GAS_ORIGINAL.replace("next", "l1").replace("# print", "# emit")),
        ("line.hex", HEX_ORIGINAL, "c706fe7f0100 66b8fe7f0000\nBA1005 66EF F4  # the same bytes\n"),
    ],
)
def test_renaming_and_layout_do_not_hide_a_copy_in_any_language(
    tmp_path: Path, name: str, original: str, renamed: str
) -> None:
    # In every pair only names, comments and layout differ: one token text, similarity 1.0.
    assert only(code_near_copies(pair(tmp_path, name, original, renamed), {})).score == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("name", "a", "b"), [("x.c", C_ORIGINAL, C_OTHER), ("P.java", JAVA_ORIGINAL, JAVA_OTHER)]
)
def test_different_programs_in_c_and_java_are_not_flagged(tmp_path: Path, name: str, a: str, b: str) -> None:
    assert code_near_copies(pair(tmp_path, name, a, b), {}) == []


def test_files_are_compared_within_one_input_and_one_language(tmp_path: Path) -> None:
    # the same C file as input "a" of s1 and input "b" of s2, and as a .java: never compared
    subs = {
        "s1": {"a": write(tmp_path / "s1" / "x.c", C_ORIGINAL)},
        "s2": {
            "b": write(tmp_path / "s2" / "x.c", C_ORIGINAL),
            "a": write(tmp_path / "s2" / "x.java", C_ORIGINAL),
        },
    }
    assert code_near_copies(subs, {}) == []


def test_a_renamed_file_of_a_dir_input_is_still_found(tmp_path: Path) -> None:
    subs = {
        "s1": {"jasmin/Countdown.j": write(tmp_path / "s1" / "Countdown.j", JASMIN_ORIGINAL)},
        "s2": {
            "jasmin/Mine.j": write(tmp_path / "s2" / "Mine.j", JASMIN_ORIGINAL.replace("top", "loop")),
            "jasmin/notes.txt": write(tmp_path / "s2" / "notes.txt", "not code"),
        },
    }
    found = only(code_near_copies(subs, {"jasmin": [ROOT / "labs" / "hll-vm" / "jasmin" / "Good.j"]}))
    # lines 2-3 (.class public X, .super java/lang/Object) are in the lab's Good.j too: skeleton
    assert found.evidence.startswith(
        "jasmin: s1's jasmin/Countdown.j lines 5-18 ~ s2's jasmin/Mine.j lines 5-18"
    )


# ---- what a hand-in holds --------------------------------------------------------------------------


def _record(
    name: str, kind: Literal["file", "dir"], source: Literal["student", "default"], artifact: str
) -> InputRecord:
    sha = hashlib.sha256(b"").hexdigest()
    return InputRecord(name=name, kind=kind, source=source, size=1, files=1, sha256=sha, artifact=artifact)


def test_student_files_are_the_own_inputs_inside_the_hand_in(
    tmp_path: Path, make_report: Callable[..., Report]
) -> None:
    hand_in = tmp_path / "s1"
    arts = hand_in / "artifacts" / "inputs"
    write(arts / "program" / "line.asm", "hlt\n")
    write(arts / "jasmin" / "A.j", ".class public A\n")
    write(arts / "jasmin" / "sub" / "B.j", ".class public B\n")
    outside = write(tmp_path / "tutor" / "secret.asm", "hlt\n")
    (arts / "jasmin" / "leak.j").symlink_to(outside)
    (arts / "link").symlink_to(outside)
    write(arts / "t1" / "engine.py", "pass\n")
    report = make_report({}).model_copy(
        update={
            "inputs": {
                "program": _record("program", "file", "student", "artifacts/inputs/program/line.asm"),
                "jasmin": _record("jasmin", "dir", "student", "artifacts/inputs/jasmin"),
                "t1": _record("t1", "file", "default", "artifacts/inputs/t1/engine.py"),
                "up": _record("up", "file", "student", "../tutor/secret.asm"),
                "link": _record("link", "file", "student", "artifacts/inputs/link"),
                "abs": _record("abs", "file", "student", str(outside)),
            }
        }
    )
    assert student_files(report, hand_in) == {
        "program": arts / "program" / "line.asm",
        "jasmin/A.j": arts / "jasmin" / "A.j",
        "jasmin/sub/B.j": arts / "jasmin" / "sub" / "B.j",
    }


def test_the_hll_vm_jasmin_folder_is_boilerplate_file_by_file() -> None:
    lab_dir = lab_path("hll-vm").parent
    found = lab_boilerplate(load_lab("hll-vm"), lab_dir)
    # the Jasmin task's template folder, which every student starts from
    template = lab_dir / "skeleton" / "jasmin"
    assert found["jasmin"] == sorted(p for p in template.rglob("*") if p.is_file()) != []


# ---- samples ------------------------------------------------------------------------------------

# Two honest warmup runs on this kit's host (AMD EPYC, 2 vCPUs, 2026-12-04), the closest of 190
# pairs of 20 runs: raw start-up times in seconds, 6 significant digits.
# fmt: off
HONEST_3 = {
    "true": [
        0.00113361, 0.000911302, 0.00086305, 0.000838083, 0.000805544, 0.000868728, 0.00081605, 0.000790152,
        0.000771364, 0.00082908, 0.000923439, 0.00090306, 0.0007687, 0.000760258, 0.000812005, 0.000764624,
        0.000774319, 0.000759417, 0.000768349, 0.000769131,
    ],
    "python": [
        0.0117906, 0.0119406, 0.0119776, 0.0159177, 0.0118711, 0.0154103, 0.0115947, 0.0153351,
        0.014983, 0.0152924, 0.0153345, 0.0138375, 0.0118336, 0.016018, 0.015861, 0.012465,
        0.0123027, 0.0113101, 0.0114594, 0.0118349,
    ],
    "uname": [0.00135646, 0.00112956, 0.00107578],
}
HONEST_4 = {
    "true": [
        0.00110202, 0.000810883, 0.000831013, 0.000774399, 0.000784934, 0.000803522, 0.000777603, 0.000868639,
        0.000787318, 0.000799316, 0.000793717, 0.000799806, 0.000920505, 0.000799245, 0.000778675,
        0.000777193, 0.000787848, 0.000835159, 0.000774839, 0.000783902,
    ],
    "python": [
        0.0117089, 0.0109136, 0.0109599, 0.014817, 0.0111654, 0.0147006, 0.0112583, 0.0110304,
        0.0114864, 0.0150437, 0.0148195, 0.0150901, 0.0113565, 0.0113653, 0.011538, 0.0140025,
        0.0151744, 0.0152369, 0.0121045, 0.0117873,
    ],
    "uname": [0.00157293, 0.00122608, 0.00120031],
}
# fmt: on


def forge(vec: list[float], rng: random.Random, jitter: float = 0.0099, scale: float = 1.07) -> list[float]:
    """A forger's copy: every sample scaled, moved by under `jitter`, and the order shuffled."""
    out = [x * scale * (1 + rng.uniform(-jitter, jitter)) for x in vec]
    rng.shuffle(out)
    return out


def test_the_distance_is_half_the_spread_of_log_ratios_of_sorted_samples() -> None:
    # x sorted [1, 2, 4], y sorted [2.02, 3.96, 8]: ratios 2.02, 1.98, 2. The log ratios span
    # ln(2.02 / 1.98) = 0.0200007, so the distance is 0.0100003 with scale sqrt(2.02 * 1.98) = 1.99990.
    d, s = vector_distance([4.0, 1.0, 2.0], [3.96, 8.0, 2.02])
    assert d == pytest.approx(math.log(2.02 / 1.98) / 2, rel=1e-9) == pytest.approx(0.0100003, abs=1e-7)
    assert s == pytest.approx(math.sqrt(2.02 * 1.98), rel=1e-9)
    # that is the worst a copy moved by under 1 % can reach (ln 1.01 - ln 0.99) / 2
    assert jitter_bound(0.01) == pytest.approx(0.0100003, abs=1e-7)
    assert jitter_bound(0.01) < SAMPLE_THRESHOLD


def test_a_jittered_shuffled_rescaled_copy_of_the_samples_is_flagged() -> None:
    rng = random.Random(11)
    copy = {p: forge(v, rng) for p, v in HONEST_3.items()}
    found = only(sample_near_copies({"alice": HONEST_3, "mallory": copy}))
    assert (found.a, found.b, found.kind) == ("alice", "mallory", "samples")
    # every sample within 0.99 % after sorting and one scale: distance <= jitter_bound(0.0099) < 0.0100
    assert 1 - found.score <= 0.0100
    assert "3 of 3 shared sample vectors" in found.evidence and "x1.07" in found.evidence


def test_honest_runs_on_one_host_are_not_flagged() -> None:
    assert sample_near_copies({"r3": HONEST_3, "r4": HONEST_4}) == []
    # By hand, 'true' sorted: the smallest are 0.759417 ms (r3) and 0.774399 ms (r4), ratio 1.0197;
    # the 17th smallest 0.903060 and 0.835159 ms, ratio 0.9248. No one scale fits both within
    # ln(1.0197 / 0.9248) / 2 = 0.0489: over three times the threshold.
    assert vector_distance(HONEST_3["true"], HONEST_4["true"])[0] == pytest.approx(0.0489, abs=1e-4)
    assert 3 * SAMPLE_THRESHOLD < 0.0489


def test_the_robust_spread_is_the_scaled_median_absolute_deviation_of_the_logs() -> None:
    # logs of [1, e^0.01, e^0.02, e^0.5]: 0, 0.01, 0.02, 0.5, median 0.015; deviations 0.015, 0.005,
    # 0.005, 0.485, median 0.01; x 1.4826 = 0.014826. The outlier (e^0.5) does not widen it.
    assert robust_spread([1.0, math.exp(0.01), math.exp(0.02), math.exp(0.5)]) == pytest.approx(0.014826)
    assert robust_spread([5.0, 5.0, 5.0, 6.0]) == 0.0  # ties: a quantised count


def test_the_honest_chance_is_the_bound_of_the_order_statistics() -> None:
    # n = 5, d = 0.01, s = 0.1: r = 0.1; (1.1 sqrt(4) r)^4 = 0.22^4 = 0.00234 -> log10 -2.630
    assert honest_log10_chance(5, 0.01, 0.1) == pytest.approx(4 * math.log10(0.22))
    assert honest_log10_chance(5, 0.0, 0.1) == pytest.approx(4 * math.log10(0.044))  # r >= RESOLUTION
    assert honest_log10_chance(5, 0.05, 0.1) == 0.0  # r = 0.5: c r >= 1, no evidence
    assert honest_log10_chance(2, 0.0, 0.1) == 0.0 and honest_log10_chance(5, 0.0, 0.0) == 0.0


def test_honest_runs_of_a_tight_measurement_are_not_flagged() -> None:
    # As hll-vm's JIT timings: six 8-sample vectors, each varying by 1 % (lognormal, sigma 0.01), drawn
    # independently for two students. Their distances come out about 1 %, inside SAMPLE_THRESHOLD
    # (1.5 %) on most vectors, which flagged them when closeness alone counted. Against their own 1 %
    # noise they are no closer than re-runs are.
    rng = random.Random(4)

    def draw() -> dict[str, list[float]]:
        return {f"v{i}": [(i + 1) * rng.lognormvariate(0, 0.01) for _ in range(8)] for i in range(6)}

    held_by_threshold_alone = 0
    for _pair in range(20):
        a, b = draw(), draw()
        close = [p for p in a if vector_distance(a[p], b[p])[0] <= SAMPLE_THRESHOLD]
        held_by_threshold_alone += len(close) >= 4
        assert sample_near_copies({"ana": a, "ben": b}) == []
    assert held_by_threshold_alone >= 10  # the case this rule is for, not a lucky draw


def test_a_copy_nudged_by_1_percent_is_caught_where_the_noise_is_large() -> None:
    # forge() moves each sample by under 0.99 %: distance < 0.0099 (jitter_bound). Against 8 % noise
    # an 8-sample vector that close is r <= 0.0099 / 0.08 = 0.124: (1.1 sqrt(7) 0.124)^7 = 0.361^7,
    # log10 -3.1 per vector; five of them -15.5, far past PAIR_EVIDENCE (8).
    rng = random.Random(8)
    vec = {f"v{i}": [rng.lognormvariate(0, 0.08) for _ in range(8)] for i in range(5)}
    copy = {p: forge(v, rng) for p, v in vec.items()}
    assert sum(honest_log10_chance(8, 0.0099, robust_spread(v)) for v in vec.values()) < -PAIR_EVIDENCE
    found = only(sample_near_copies({"una": vec, "wes": copy}))
    assert "5 of 5 shared sample vectors" in found.evidence and "of spread" in found.evidence


def test_short_vectors_are_no_evidence_even_when_copied_exactly() -> None:
    # kvm-api `own`: 3 samples and a stage derived from them (samples / 2 exits), counted once. An
    # exact copy is at best r = RESOLUTION: (1.1 sqrt(2) 0.02)^2 -> log10 -3.0, under PAIR_EVIDENCE (8).
    own = [515425.0, 192836.0, 186246.0]
    report = {"own-program": own, "own-program.stages.ns_per_exit": [x / 2 for x in own]}
    assert sample_near_copies({"a": report, "b": dict(report)}) == []
    assert -honest_log10_chance(3, 0.0, robust_spread(own)) < PAIR_EVIDENCE


def test_a_partial_copy_is_flagged_on_what_was_copied() -> None:
    rng = random.Random(5)
    copy = {
        "true": forge(HONEST_3["true"], rng),
        "python": forge(HONEST_3["python"], rng),
        "uname": HONEST_4["uname"],
    }
    found = only(sample_near_copies({"a": HONEST_3, "b": copy, "c": HONEST_4}))
    assert (found.a, found.b) == ("a", "b")
    assert found.evidence.startswith("2 of 3 shared sample vectors")


def test_vectors_of_other_lengths_or_paths_are_not_compared() -> None:
    rng = random.Random(2)
    a = {"true": HONEST_3["true"], "python": HONEST_3["python"]}
    b = {"true": forge(HONEST_3["true"], rng)[:19], "python2": forge(HONEST_3["python"], rng)}
    assert sample_near_copies({"a": a, "b": b}) == []


def test_sample_vectors_takes_headline_and_stage_samples_worth_comparing(
    make_report: Callable[..., Report],
) -> None:
    m = Measurement(unit="ns", samples=[2.0, 3.0], summary=Summary(n=2, median=2.5, min=2.0, max=3.0))
    flat = Measurement(unit="ns", samples=[5.0, 5.0], summary=Summary(n=2, median=5.0, min=5.0, max=5.0))
    report = make_report(
        {
            "boot": Experiment(unit="s", samples=[1.0, 1.5, 1.2], stages={"kernel": m, "flat": flat}),
            "one": Experiment(unit="s", samples=[1.0]),
            "zeros": Experiment(unit="s", samples=[0.0, 0.0]),
            "group": {"x86": Experiment(unit="s", samples=[0.5, 0.7])},
        }
    )
    assert sample_vectors(report) == {
        "boot": [1.0, 1.5, 1.2],
        "boot.stages.kernel": [2.0, 3.0],
        "group.x86": [0.5, 0.7],
    }


def test_only_the_copy_pair_of_a_class_is_flagged() -> None:
    # 40 honest-looking hand-ins (independent draws with 5-15 % noise, as on this host) and one copy
    rng = random.Random(3)
    cls = {
        f"s{i:02d}": {p: [x * rng.lognormvariate(0, 0.1) for x in v] for p, v in HONEST_3.items()}
        for i in range(40)
    }
    cls["zz-copy"] = {p: forge(v, rng) for p, v in cls["s07"].items()}
    assert [(c.a, c.b) for c in sample_near_copies(cls)] == [("s07", "zz-copy")]
