"""The structural counts lab.toml grades, re-derived from the reference interpreter's block trace, and
the reference engines' own counters held against them (an engine never grades itself)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from vmlab.isa.gen import scenario_program
from vmlab.isa.reference import trace_blocks
from vmlab.isa.registry import get_engine

LAB = Path(__file__).resolve().parents[3] / "labs" / "isa-emulation" / "lab.toml"
CHECKS = {c["id"]: c for c in tomllib.loads(LAB.read_text())["checks"]}


def _expected(n: int) -> dict[str, int]:
    t = trace_blocks(scenario_program(n))
    return {
        f"t4-blocks-S{n}": t.blocks(),
        f"t5-chainings-S{n}": t.chainings(),
        f"t5-blocks-S{n}": t.blocks(),
        f"t6-superblocks-S{n}": t.superblocks(hot=4),
        f"t4-staged-blocks-S{n}": t.blocks(threshold=8),
    }


def test_s3_counts_in_lab_toml_follow_from_the_trace() -> None:
    want = _expected(3)
    assert (want["t4-blocks-S3"], want["t5-chainings-S3"], want["t6-superblocks-S3"]) == (2542, 2755, 196)
    for cid in ("t4-blocks-S3", "t4-staged-blocks-S3", "t5-chainings-S3", "t6-superblocks-S3"):
        assert CHECKS[cid]["value"] == want[cid], cid


def test_reference_engines_count_what_the_trace_says_on_s3() -> None:
    p = scenario_program(3)
    t = trace_blocks(p)
    assert get_engine("bt-block")(p.code, p.a, p.l).stats["blocks_translated"] == t.blocks()
    assert get_engine("bt-staged")(p.code, p.a, p.l).stats["blocks_translated"] == t.blocks(8)
    assert get_engine("bt-chain")(p.code, p.a, p.l).stats["chainings"] == t.chainings()
    for hot in (1, 4, 8):
        r = get_engine("bt-superblock")(p.code, p.a, p.l, hot=hot)
        assert r.stats["superblocks"] == t.superblocks(hot), hot
    tiered = get_engine("bt-tiered")(p.code, p.a, p.l, threshold=8)
    assert (tiered.stats["tier0_blocks"], tiered.stats["blocks_translated"]) == (len(t.entries), t.blocks(8))


@pytest.mark.slow
def test_s4_counts_in_lab_toml_follow_from_the_trace() -> None:
    want = _expected(4)
    for cid, value in want.items():
        assert CHECKS[cid]["value"] == value, cid
    assert CHECKS["t2-predecoded"]["value"] == len(scenario_program(3).code)
