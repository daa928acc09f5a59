"""The lab's parsers on captured output of each OpenJDK release it knows: 17 (Debian 12), 21 and 25
(Debian 13). Captured with the lab's own workloads and flags (measure.py) in a Debian 13 root; the
expected facts are HotSpot's (tiered compilation compiles a hot loop at tier 3, then 4, with OSR; a
monomorphic call site is inlined, a megamorphic one is a virtual call; the threshold defaults are those
of compiler_globals.hpp), not this parser's output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vmlab.hllvm import parse as P
from vmlab.hllvm.versions import KNOWN, facts_for, feature, version_note

RELEASES = ("jdk17", "jdk21", "jdk25")


@pytest.mark.parametrize("jdk", RELEASES)
def test_version_files_name_a_known_release(data: Path, jdk: str) -> None:
    text = (data / f"version-{jdk}.txt").read_text()
    m = re.search(r'version "([^"]+)"', text)
    assert m is not None
    assert feature(m.group(1)) == int(jdk[3:])
    assert version_note(m.group(1)) is None


@pytest.mark.parametrize("jdk", RELEASES)
def test_every_print_compilation_line_parses(data: Path, jdk: str) -> None:
    for mode in ("tiered", "c2only"):
        text = (data / f"printcompilation-{mode}-{jdk}.txt").read_text()
        lines = [ln for ln in text.splitlines() if re.match(r"^\s*\d+\s+\d+ ", ln)]
        assert len(P.parse_print_compilation(text)) == len(lines) > 0


@pytest.mark.parametrize("jdk", RELEASES)
def test_hot_loop_goes_through_tier_3_then_4(data: Path, jdk: str) -> None:
    s = P.summarize_method(
        P.parse_print_compilation((data / f"printcompilation-tiered-{jdk}.txt").read_text()), "HotLoop::loop"
    )
    assert s.compiles.get("3", 0) + s.osr.get("3", 0) >= 1
    assert s.compiles.get("4", 0) + s.osr.get("4", 0) >= 1
    assert min(s.first_compile_ms.get("3", 10**9), s.first_osr_ms.get("3", 10**9)) <= min(
        s.first_compile_ms.get("4", 10**9), s.first_osr_ms.get("4", 10**9)
    )


@pytest.mark.parametrize("jdk", RELEASES)
def test_inlining_by_morphism_in_each_release(data: Path, jdk: str) -> None:
    """JDK 25 writes "failed to inline: no static binding" and the second receiver of a bimorphic site
    after "callee changed to" on the same line: read back, the decisions are JDK 17's."""

    def area(name: str) -> set[tuple[str, str]]:
        ds = P.parse_print_inlining((data / f"printinlining-{name}-{jdk}.txt").read_text())
        return {(d.method, d.message) for d in ds if d.method.endswith("::area") and d.depth == 0}

    assert ("CallSite$Square::area", "inline (hot)") in area("mono")
    bi = area("bi")
    assert {("CallSite$Square::area", "inline (hot)"), ("CallSite$Rect::area", "inline (hot)")} <= bi
    mega = area("mega")
    assert ("CallSite$Shape::area", "virtual call") in mega
    assert not any(msg == "inline (hot)" for _, msg in mega)
    assert not any(msg.startswith("failed to inline") for _, msg in mega | bi)


@pytest.mark.parametrize("jdk", RELEASES)
def test_threshold_defaults_match_the_release_facts(data: Path, jdk: str) -> None:
    flags = P.parse_flags_final((data / f"flagsfinal-{jdk}.txt").read_text())
    facts = KNOWN[int(jdk[3:])]
    assert flags["Tier3InvocationThreshold"].as_number() == facts.tier3_invocation == 200
    assert flags["Tier4InvocationThreshold"].as_number() == facts.tier4_invocation == 5000
    assert flags["CompileThreshold"].as_number() == facts.compile_threshold == 10000
    assert all(name in flags for name in P.THRESHOLD_FLAGS)


def test_inlining_format_changes_with_jdk_25(data: Path) -> None:
    assert "failed to inline" not in (data / "printinlining-mega-jdk21.txt").read_text()
    assert "failed to inline" in (data / "printinlining-mega-jdk25.txt").read_text()
    assert (KNOWN[21].inlining_format, KNOWN[25].inlining_format) == ("jdk17", "jdk25")


@pytest.mark.parametrize(
    ("version", "feat", "nearest"),
    [("26.0.1", 26, 25), ("11.0.22", 11, 17), ("1.8.0_402", 8, 17), ("22", 22, 21)],
)
def test_an_unknown_release_gets_one_line_naming_it(version: str, feat: int, nearest: int) -> None:
    assert feature(version) == feat
    assert facts_for(version).feature == nearest
    note = version_note(version)
    assert note is not None and "\n" not in note
    assert version in note and f"OpenJDK {nearest}'s" in note and "17, 21, 25" in note


@pytest.mark.parametrize("jdk", RELEASES)
def test_gc_log_in_each_release(data: Path, jdk: str) -> None:
    collector, pauses = P.parse_gc_log((data / f"gc-g1-{jdk}.txt").read_text())
    assert collector == "G1"
    assert len(pauses) == sum(
        1 for ln in (data / f"gc-g1-{jdk}.txt").read_text().splitlines() if "Pause" in ln
    )
