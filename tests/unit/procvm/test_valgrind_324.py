"""The parsers on Valgrind 3.24.0's output (Debian 13), captured in a trixie root with the same
commands as the 3.19.0 logs beside them: the observer was built by toolbuild against 3.24's Debian
source (154 s on 2 cores). The expected counts are the hand-counted loop's (test_parse.py), which do
not depend on the Valgrind release."""

from __future__ import annotations

from pathlib import Path

from vmlab.procvm.parse import parse_lackey, parse_observer, parse_stats

DATA = Path(__file__).parent / "data"
HAND_INSTRS = 1 + 4 * 1000 + 3  # loop_x86_64.S: mov, 1000 x 4 body, 3 to exit
HAND_SB_BYTES = 16 + 11 + 9  # entry, loop and exit superblocks (objdump, test_parse.py)


def read(name: str) -> str:
    text = (DATA / f"{name}-valgrind-3.24.log").read_text()
    assert "Using Valgrind-3.24.0" in text
    return text


def test_lackey_and_stats_on_the_hand_counted_loop() -> None:
    text = read("lackey_stats_loop_x86_64")
    c = parse_lackey(text)
    assert c.guest_instrs == HAND_INSTRS
    assert c.sbs_entered == 1 + 500 + 1  # VEX still unrolls the self-loop once
    assert (c.jccs, c.jccs_taken) == (1000, 999)
    s = parse_stats(text)
    assert (s.translations, s.guest_bytes, s.guest_insns_translated) == (3, HAND_SB_BYTES, 5 + 4 + 3)


def test_observer_built_against_324() -> None:
    o = parse_observer(read("observer_loop_x86_64"))
    assert (o.translated, o.sbs_entered, o.guest_instrs) == (3, 502, 5 + 500 * 8 + 3)


def test_true_runs_parse() -> None:
    c = parse_lackey(read("lackey_true"))
    assert c.guest_instrs > 0 and c.sbs_entered >= c.sbs_completed > 0
    s = parse_stats(read("none_stats_true"))
    assert s.translations > 0 and s.host_bytes > s.guest_bytes > 0


def test_an_unknown_release_gets_one_line() -> None:
    from vmlab.procvm.toolbuild import valgrind_note

    assert valgrind_note("3.19.0") is None and valgrind_note("3.24.0") is None
    note = valgrind_note("3.22.0")
    assert note is not None and "\n" not in note
    assert note.startswith("Valgrind 3.22.0 is outside the releases this lab knows (3.19, 3.24)")
