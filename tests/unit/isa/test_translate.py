"""Folding, block discovery and the translators' counters on programs small enough to reason about."""

from __future__ import annotations

import pytest

from vmlab.isa.engines import get_engine
from vmlab.isa.engines.fold import Expr, fold
from vmlab.isa.engines.translate import block_end, leaders_of, unchained_source
from vmlab.isa.machine import BACK7, CLRA, DECA, HALT, INC3A, SETL


def test_fold_merges_increments_and_drops_dead_clra() -> None:
    code = bytes([INC3A, CLRA, INC3A, INC3A, DECA, HALT])
    eff = fold(code, 0, len(code))
    assert eff.a == Expr(absolute=True, k=5) and eff.l is None and eff.end == HALT
    assert eff.dropped == 4  # five ALU instructions became one assignment


def test_fold_keeps_only_the_last_setl_relative_to_entry() -> None:
    code = bytes([SETL, INC3A, SETL, DECA, BACK7])
    eff = fold(code, 0, len(code))
    assert eff.l == Expr(absolute=False, k=3) and eff.a == Expr(absolute=False, k=2)
    assert eff.lines() == ["    l = a + 3 - 1", "    a = a + 2"]


def test_fold_refuses_a_jump_in_the_middle() -> None:
    with pytest.raises(ValueError, match="inside a straight-line run"):
        fold(bytes([BACK7, INC3A]), 0, 2)


LOOP = bytes([INC3A] * 3 + [SETL] + [INC3A] * 6 + [BACK7, INC3A, HALT])  # L = A, loop of 6 INC3A


def test_blocks_end_at_jumps_and_leaders() -> None:
    assert block_end(LOOP, 0) == 11
    assert leaders_of(LOOP) == {0, 4, 11}
    assert block_end(LOOP, 0, leaders_of(LOOP)) == 4


def test_unchained_source_returns_both_successors() -> None:
    src = unchained_source(fold(LOOP, 4, 11), 4)
    assert "if l > 0: return 4, a, l, n + 7" in src and "return 11, a, l, n + 7" in src


def _run(name: str, code: bytes, a: int = 1, l: int = 0) -> tuple[int, int, int, dict[str, int]]:  # noqa: E741
    r = get_engine(name)(code, a, l)
    return r.a, r.l, r.executed, r.stats


def test_loop_counts_are_exact_for_every_translator() -> None:
    # A=1 → 10 after 3 INC3A; L=10; the loop body runs 10 times: 9 taken BACK7s
    expect = (1 + 9 + 18 * 10 + 3, 0, 4 + 7 * 10 + 2)
    for name in ("switch", "bt-block", "bt-pretranslate", "bt-staged", "bt-chain", "bt-superblock"):
        assert _run(name, LOOP)[:3] == expect, name


def test_block_translation_counts() -> None:
    # entry block 0..10, the loop block 4..10 (re-entered by the BACK7), the exit block 11..12
    assert _run("bt-block", LOOP)[3]["blocks_translated"] == 3
    assert _run("bt-pretranslate", LOOP)[3]["blocks_translated"] == len(leaders_of(LOOP))


def test_staged_interprets_cold_blocks_and_translates_hot_ones() -> None:
    from vmlab.isa.engines.bt_staged import run

    cold = run(LOOP, 1, 0, threshold=100)
    assert cold.stats["blocks_translated"] == 0 and cold.stats["interpreted"] == cold.executed
    hot = run(LOOP, 1, 0, threshold=2)
    assert hot.stats["blocks_translated"] == 1  # only the loop body came back more than twice
    assert (hot.a, hot.executed) == (cold.a, cold.executed)


def test_chaining_patches_each_exit_once() -> None:
    stats = _run("bt-chain", LOOP)[3]
    # exits taken: entry→loop (taken), loop→loop (taken), loop→exit (fall through)
    assert stats["chainings"] == 3 and stats["blocks_translated"] == 3


def test_hot_loop_becomes_an_unrolled_superblock() -> None:
    from vmlab.isa.engines.bt_superblock import run

    for unroll in (1, 2, 3):
        r = run(LOOP, 1, 0, hot=2, unroll=unroll)
        assert r.stats["superblocks"] == 1
        assert (r.a, r.executed) == (1 + 9 + 180 + 3, 76)


def test_no_superblock_for_a_loop_with_an_inner_jump() -> None:
    from vmlab.isa.engines.bt_superblock import run

    # the loop 4..10 is simple; the BACK7 at 13 jumps to 7, whose block ends at the BACK7 at 10:
    # no superblock for that one
    code = bytes([INC3A] * 3 + [SETL] + [INC3A] * 6 + [BACK7, INC3A, INC3A, BACK7, HALT])
    r = run(code, 1, 0, hot=1)
    ref = get_engine("switch")(code, 1, 0)
    assert r.stats["superblocks"] == 1 and (r.a, r.l, r.executed) == (ref.a, ref.l, ref.executed)


def test_tiers_interpret_translate_and_form_superblocks() -> None:
    from vmlab.isa.engines.bt_tiered import run

    # blocks: entry 0..10 once, the loop 4..10 nine more times, the exit 11..12 once
    cold = run(LOOP, 1, 0, threshold=100, hot=1)
    assert (cold.stats["tier0_blocks"], cold.stats["blocks_translated"], cold.stats["superblocks"]) == (
        3,
        0,
        0,
    )
    assert cold.stats["interpreted"] == cold.executed == 76
    warm = run(LOOP, 1, 0, threshold=2, hot=100)
    assert (warm.stats["blocks_translated"], warm.stats["superblocks"]) == (1, 0)  # only the loop is warm
    hot = run(LOOP, 1, 0, threshold=1, hot=2, unroll=3)
    assert hot.stats["superblocks"] == 1
    for r in (cold, warm, hot):
        assert (r.a, r.l, r.executed) == (1 + 9 + 180 + 3, 0, 76)


def test_x86_assembles_only_blocks_past_the_threshold() -> None:
    from tests.unit.isa.conftest import engine_or_skip

    x86 = engine_or_skip("x86")
    cold = x86(LOOP, 1, 0, threshold=100)
    assert (cold.stats["blocks_translated"], cold.stats["native_calls"]) == (0, 0)
    hot = x86(LOOP, 1, 0, threshold=1)
    # the loop block is entered 10 times: interpreted twice, then assembled; its taken exit jumps to itself
    assert (hot.stats["blocks_translated"], hot.stats["chainings"], hot.stats["native_calls"]) == (1, 1, 1)
    assert (hot.a, hot.l, hot.executed) == (cold.a, cold.l, cold.executed) == (193, 0, 76)
