"""Every engine against the oracles, and against the reference on random programs (hypothesis).

Each engine is its own test (parametrized by name), so one engine's skip or failure says nothing of
the others; only the x86 engine can skip, on the tests' own probe (conftest.native_code_refused)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vmlab.isa.engines import Engine, as_result
from vmlab.isa.gen import SCENARIOS, check_params, generate, scenario_program
from vmlab.isa.machine import BACK7, HALT, Program
from vmlab.isa.reference import BudgetExceeded, run_reference

PROGRAMS = {n: scenario_program(n) for n in SCENARIOS}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_engine_reproduces_small_oracles(engine: tuple[str, Engine], n: int) -> None:
    name, run = engine
    p, s = PROGRAMS[n], SCENARIOS[n]
    r = as_result(run(p.code, p.a, p.l), name)
    assert (r.a, r.executed) == (s.final_a, s.executed)


@pytest.mark.slow
def test_engine_reproduces_the_s4_oracle(engine: tuple[str, Engine]) -> None:
    name, run = engine
    p, s = PROGRAMS[4], SCENARIOS[4]
    r = as_result(run(p.code, p.a, p.l), name)
    assert (r.a, r.l, r.executed) == (s.final_a, 0, s.executed)


BUDGET = 20_000


def _agrees(engine: tuple[str, Engine], program: Program, *, in_hypothesis: bool = True) -> None:
    name, run = engine
    try:
        want = run_reference(program, max_instructions=BUDGET)
    except BudgetExceeded:
        if not in_hypothesis:
            raise
        assume(False)  # an endless loop (SETL inside a loop body): not a program to compare on
        return
    r = as_result(run(program.code, program.a, program.l), name)
    assert (r.a, r.l, r.executed) == (want.a, want.l, want.executed), f"{name} on {list(program.code)}"


probs = st.tuples(*[st.integers(0, 6)] * 5).filter(lambda p: _valid(p))


def _valid(p: tuple[int, ...]) -> bool:
    try:
        check_params(8, p)
    except Exception:
        return False
    return True


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@SETTINGS
@given(size=st.integers(8, 160), seed=st.integers(0, 2**31 - 1), p=probs)
def test_generated_programs_agree_with_the_reference(
    each_engine: tuple[str, Engine], size: int, seed: int, p: tuple[int, ...]
) -> None:
    _agrees(each_engine, generate(size, seed, p))


@st.composite
def raw_programs(draw: st.DrawFn) -> Program:
    """Any valid byte array: HALT anywhere (also inside loop bodies), SETL inside loops, odd initial L."""
    size = draw(st.integers(2, 60))
    ops = [draw(st.integers(0, 5)) for _ in range(size - 1)] + [HALT]
    ops = [op if not (op == BACK7 and i < 6) else 2 for i, op in enumerate(ops)]
    return Program(code=bytes(ops), a=draw(st.integers(-20, 20)), l=draw(st.integers(-5, 20)))


@SETTINGS
@given(program=raw_programs())
def test_arbitrary_programs_agree_with_the_reference(
    each_engine: tuple[str, Engine], program: Program
) -> None:
    _agrees(each_engine, program)


@pytest.mark.parametrize(
    "code",
    [
        bytes([2, 2, 2, 4, 2, 2, 0, 2, 2, 5, 0]),  # HALT inside the body of the last loop
        bytes([2, 4, 2, 2, 2, 2, 2, 2, 5, 0]),  # the loop falls through straight into HALT
        bytes([2, 2, 4, 2, 2, 2, 2, 2, 2, 5, 5, 0]),  # two BACK7 in a row: overlapping loops
    ],
)
def test_halt_near_and_inside_loops(engine: tuple[str, Engine], code: bytes) -> None:
    _agrees(engine, Program(code=code, a=0, l=0), in_hypothesis=False)
    _agrees(engine, Program(code=code, a=5, l=3), in_hypothesis=False)
