"""Fixtures of the ISA tests: engines by name, with x86 skipped where this host refuses PROT_EXEC."""

from __future__ import annotations

import pytest

from vmlab.isa.engines import ENGINES, Engine, get_engine


def engine_or_skip(name: str) -> Engine:
    if name == "x86":
        from vmlab.isa.engines.x86 import unavailable_reason

        reason = unavailable_reason()  # probes: maps a page, makes it executable, unmaps it
        if reason is not None:
            pytest.skip(f"x86 engine unavailable here: {reason}")
    return get_engine(name)


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest) -> tuple[str, Engine]:
    return request.param, engine_or_skip(request.param)
