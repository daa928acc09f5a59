"""CPython's adaptive interpreter, observed in a child of the kit's interpreter."""

from __future__ import annotations

import dis
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from vmlab.hllvm import pychild, pyspec


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return pyspec.run_child(warmup=20, n=100, count_n=10, depth=12, repeats=2)


def test_child_is_the_kits_python(result: dict[str, Any]) -> None:
    assert result["python"] == list(sys.version_info[:3])


def test_instruction_counts_match_dis_here(result: dict[str, Any]) -> None:
    spec, _ = pyspec.experiments(result)
    for name, f in pychild.WORKLOADS.items():
        assert spec[name].counts["instructions"] == len(list(dis.get_instructions(f))), name


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="specialised names pinned for CPython 3.11 only")
def test_specialised_names_311(result: dict[str, Any]) -> None:
    spec, _ = pyspec.experiments(result)
    after = {name: e.text or "" for name, e in spec.items()}
    assert "BINARY_OP_ADD_INT" in after["add_ints"].split()
    assert "LOAD_FAST__LOAD_FAST" in after["add_ints"].split()
    assert "BINARY_OP_ADD_FLOAT" in after["add_floats"].split()
    assert "BINARY_OP_ADAPTIVE" in after["add_mixed"].split()
    assert "LOAD_GLOBAL_BUILTIN" in after["call_builtin"].split()
    # before warm-up nothing is specialised yet
    assert "BINARY_OP_ADD_INT" not in str(spec["add_ints"].values["before"])
    assert all(e.values["expected_found"] is True for e in spec.values())


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="opcode sequence of a for loop is 3.11's")
def test_executed_opcodes_311(result: dict[str, Any]) -> None:
    spec, _ = pyspec.experiments(result)
    # add_ints(10): per iteration FOR_ITER STORE_FAST LOAD_FAST LOAD_FAST BINARY_OP STORE_FAST
    # JUMP_BACKWARD = 7; before the loop LOAD_CONST STORE_FAST LOAD_GLOBAL LOAD_FAST PRECALL CALL
    # GET_ITER = 7 (RESUME fires the call event, not counted); after: FOR_ITER LOAD_FAST RETURN = 3
    assert spec["add_ints"].counts["executed"] == 7 * 10 + 7 + 3


def test_tracing_experiments(result: dict[str, Any]) -> None:
    _, tracing = pyspec.experiments(result)
    assert set(tracing) == {"plain", "setprofile", "settrace"}
    # fib(12) makes C(12) calls, C(n) = 1 + C(n-1) + C(n-2), C(0) = C(1) = 1: 1, 1, 3, 5, 9, 15, 25,
    # 41, 67, 109, 177, 287, 465
    assert all(e.counts["calls"] == 465 for e in tracing.values())
    assert all(e.summary is not None and e.summary.n == 2 for e in tracing.values())


def test_unpinned_version_gives_no_verdict(result: dict[str, Any]) -> None:
    other = {**result, "python": [3, 99, 0]}
    spec, _ = pyspec.experiments(other)
    assert all(e.values["expected_found"] is None for e in spec.values())


@pytest.mark.parametrize("minor", [11, 12, 13])
def test_captured_child_output_of_each_pinned_version(data: Path, minor: int) -> None:
    """The child's JSON as CPython 3.11 (Debian 12), 3.12 and 3.13 (Debian 13) printed it: every
    workload meets its pinned names (independently: the opcode tables of each release's dis)."""
    captured = json.loads((data / f"pychild-cpython3{minor}.json").read_text())
    assert captured["python"][:2] == [3, minor]
    spec, _ = pyspec.experiments(captured)
    assert {n: e.values["expected_found"] for n, e in spec.items()} == dict.fromkeys(pychild.WORKLOADS, True)


def test_313_output_read_with_312_names_fails_the_check(data: Path) -> None:
    """The pins are what decide: 3.13's CALL_LEN is not 3.12's CALL_NO_KW_LEN."""
    captured = json.loads((data / "pychild-cpython313.json").read_text())
    spec, _ = pyspec.experiments({**captured, "python": [3, 12, 0]})
    assert spec["call_builtin"].values["expected_found"] is False
    assert spec["call_builtin"].values["missing"] == "CALL_NO_KW_LEN"


def test_unpinned_version_note_is_one_line(result: dict[str, Any]) -> None:
    spec, _ = pyspec.experiments({**result, "python": [3, 14, 0]})
    notes = spec["add_ints"].provenance.notes
    assert (
        "CPython 3.14 is outside the versions this lab knows (pinned: 3.11, 3.12, 3.13): no verdict" in notes
    )


@pytest.mark.parametrize(("minor", "per_iter", "around"), [(11, 7, 10), (12, 7, 9), (13, 6, 9)])
def test_executed_opcodes_per_version(data: Path, minor: int, per_iter: int, around: int) -> None:
    """add_ints(10) by hand (dis of each release): 3.11 runs 7 a loop + 7 before (PRECALL, CALL) + 3
    after; 3.12 has no PRECALL and its exhausted FOR_ITER skips END_FOR (7n + 9); 3.13 fuses the two
    LOAD_FASTs in the compiler (6n + 9). lab.toml's py-executed-opcodes uses the same three."""
    captured = json.loads((data / f"pychild-cpython3{minor}.json").read_text())
    f = captured["functions"]["add_ints"]
    assert f["executed"] == per_iter * f["count_n"] + around
