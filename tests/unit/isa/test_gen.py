"""The generator against the homework's oracles, and its domain errors."""

from __future__ import annotations

import pytest

from vmlab.errors import UsageError
from vmlab.isa.gen import SCENARIOS, generate, parse_probs, scenario, scenario_program
from vmlab.isa.machine import BACK7, HALT, SETL
from vmlab.isa.reference import BudgetExceeded, run_reference


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_scenarios_start_with_the_oracle_registers(n: int) -> None:
    p = scenario_program(n)
    assert (p.a, p.l) == (6, 7)
    assert len(p.code) == SCENARIOS[n].size and p.code[-1] == HALT


@pytest.mark.parametrize("n", [1, 2, 3])
def test_reference_reproduces_the_oracles(n: int) -> None:
    s = SCENARIOS[n]
    r = run_reference(scenario_program(n))
    assert (r.a, r.executed) == (s.final_a, s.executed)


def test_generator_invariants_hold() -> None:
    code = scenario_program(4).code
    assert BACK7 not in code[:7]
    for p, op in enumerate(code):
        if op == BACK7:
            assert SETL not in code[p - 6 : p], f"SETL inside the loop body of the BACK7 at {p}"
    assert code.count(HALT) == 1


def test_same_parameters_same_program() -> None:
    assert generate(500, 42, (1, 9, 1, 5, 5)) == generate(500, 42, (1, 9, 1, 5, 5))
    assert generate(500, 42, (1, 9, 1, 5, 5)).code != generate(500, 43, (1, 9, 1, 5, 5)).code


def test_only_inc3a_is_a_straight_line() -> None:
    p = generate(10, 1, (0, 1, 0, 0, 0))
    assert p.code == bytes([2] * 9 + [0])


@pytest.mark.parametrize(
    ("size", "probs", "words"),
    [
        (7, (1, 9, 1, 5, 5), "size 7 is too small"),
        (100, (0, 0, 0, 0, 0), "all zero"),
        (100, (1, -1, 1, 5, 5), "negative"),
        (100, (0, 0, 0, 0, 1), "BACK7 needs CLRA, INC3A or DECA"),
        (100, (0, 0, 0, 3, 1), "BACK7 needs CLRA, INC3A or DECA"),
        (100, (1, 1, 1, 1), "five probabilities"),
    ],
)
def test_parameters_outside_the_domain_are_refused(size: int, probs: tuple[int, ...], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        generate(size, 1, probs)


def test_only_setl_without_back7_is_fine() -> None:
    assert set(generate(20, 1, (0, 0, 0, 1, 0)).code[:-1]) == {SETL}


@pytest.mark.parametrize("text", ["1/2/3", "a/b/c/d/e", "1/2/3/4/5/6"])
def test_bad_probability_strings(text: str) -> None:
    with pytest.raises(UsageError, match="probabilities"):
        parse_probs(text)


def test_probability_strings() -> None:
    assert parse_probs("1/9/1/5/5") == (1, 9, 1, 5, 5)
    assert parse_probs("0,1,0,0,0") == (0, 1, 0, 0, 0)


def test_unknown_scenario() -> None:
    with pytest.raises(UsageError, match="no scenario 5"):
        scenario(5)


def test_reference_budget() -> None:
    with pytest.raises(BudgetExceeded):
        run_reference(scenario_program(3), max_instructions=1000)
