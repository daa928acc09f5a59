"""Parsers on captured real output (tests/unit/procvm/data/, produced on Debian 12 with Valgrind 3.19.0
and QEMU 7.2). Expected values come from the hand-written programs loop_*.S, counted by hand in their
comments, or are the numbers as the tool printed them in the captured text."""

from pathlib import Path

import pytest

from vmlab.procvm.parse import (
    ParseError,
    parse_lackey,
    parse_observer,
    parse_qemu_log,
    parse_stats,
)

DATA = Path(__file__).parent / "data"

# loop_x86_64.S: mov; 1000 x (add, add, dec, jnz); mov, xor, syscall.
HAND_INSTRS = 1 + 4 * 1000 + 3
# objdump of the assembled program: mov $1000,%ecx 5 B, add $1,%rax 4 B, add %rax,%rbx 3 B, dec %ecx
# 2 B, jne 2 B, mov $60,%eax 5 B, xor %edi,%edi 2 B, syscall 2 B. Three superblocks: the entry one
# (mov .. jne, 16 B, 5 insns), the loop (add .. jne, 11 B, 4 insns), the exit (mov .. syscall, 9 B, 3).
HAND_SB_BYTES = 16 + 11 + 9
HAND_SB_INSNS = 5 + 4 + 3


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_lackey_on_the_hand_counted_loop() -> None:
    c = parse_lackey(read("lackey_stats_loop_x86_64.log"))
    assert c.guest_instrs == HAND_INSTRS
    assert c.sbs_entered >= c.sbs_completed
    # VEX unrolls the 4-instruction self-loop once: the loop superblock holds two iterations, so it is
    # entered ceil(999 / 2) = 500 times, plus the entry and exit superblocks.
    assert c.sbs_entered == 1 + 500 + 1
    assert c.exit_code == 0


def test_stats_on_the_hand_counted_loop() -> None:
    s = parse_stats(read("lackey_stats_loop_x86_64.log"))
    assert s.translations == 3
    assert s.guest_insns_translated == HAND_SB_INSNS
    assert s.guest_bytes == HAND_SB_BYTES
    assert s.uncond_chased == 0 and s.cond_chased == 0
    assert s.host_bytes > s.guest_bytes
    assert s.expansion == s.host_bytes / s.guest_bytes


def test_lackey_on_true_as_printed() -> None:
    text = read("lackey_true.log")
    c = parse_lackey(text)
    # the numbers as lackey printed them (thousands separators removed)
    assert "guest instrs:  127,665" in text and c.guest_instrs == 127_665
    assert "SBs entered:   26,411" in text and c.sbs_entered == 26_411
    assert c.sbs_completed == 16_895 and c.jccs == 25_759 and c.jccs_taken == 10_213
    assert c.ir_stmts == 880_015 and c.calls_to_main == 0
    # lackey rounds its ratios ("48 : 10"); ours are exact
    assert round(c.instrs_per_sb * 10) == 48


def test_none_stats_on_true_as_printed() -> None:
    text = read("none_stats_true.log")
    s = parse_stats(text)
    assert "transtab: new        2,128 (52,763 -> 418,779; ratio 7.9)" in text
    assert (s.translations, s.guest_bytes, s.host_bytes) == (2128, 52_763, 418_779)
    assert round(s.expansion, 1) == 7.9
    assert (s.indir_transfers, s.indir_misses) == (1235, 375)
    assert s.guest_insns_translated == 13_057 and s.uncond_chased == 425 and s.cond_chased == 96


def test_observer_on_the_hand_counted_loop() -> None:
    o = parse_observer(read("observer_loop_x86_64.log"))
    assert o.translated == 3
    assert o.sbs_entered == 502
    # one helper per superblock adds all of its instructions: the unrolled loop superblock holds 8, and
    # its last entry leaves through the side exit after 4 (999 is odd), so 4 are over-counted.
    assert o.guest_instrs == 5 + 500 * 8 + 3 == HAND_INSTRS + 4


def test_qemu_aarch64_log_of_the_hand_counted_loop() -> None:
    q = parse_qemu_log(read("qemu_aarch64_loop.log"))
    assert (q.blocks, q.guest_instrs, q.guest_bytes) == (3, 12, 48)  # see loop_aarch64.S
    assert q.executions == 1 + 999 + 1
    assert q.out_blocks == 3 and q.host_bytes > q.guest_bytes


def test_qemu_x86_64_log_of_the_hand_counted_loop() -> None:
    q = parse_qemu_log(read("qemu_x86_64_loop.log"))
    # QEMU does not unroll: the same three blocks as the source, each loop iteration one execution
    assert (q.blocks, q.guest_instrs, q.guest_bytes) == (3, HAND_SB_INSNS, HAND_SB_BYTES)
    assert q.executions == 1 + 999 + 1


def test_x86_continuation_lines_count_bytes_not_instructions() -> None:
    log = (
        "IN: f\n"
        "0x00401000:  48 b8 88 77 66 55 44 33  movabsq  $0x1122334455667788, %rax\n"
        "0x00401008:  22 11\n"
        "0x0040100a:  c3                       retq     \n"
    )
    q = parse_qemu_log(log)
    assert (q.blocks, q.guest_instrs, q.guest_bytes) == (1, 2, 11)


@pytest.mark.parametrize("parser", [parse_lackey, parse_stats, parse_observer, parse_qemu_log])
def test_missing_lines_are_an_error_not_zero(parser: object) -> None:
    with pytest.raises(ParseError) as e:
        parser("==1== Memcheck, a memory error detector\n")  # type: ignore[operator]
    assert "\n" not in e.value.one_line()
