"""The soak stays out of `make test`: it loads the whole machine for minutes (2.5 here). It runs with
`make soak` (VMLAB_SOAK=1) or a marker expression naming soak (`pytest -m soak tests/integration/soak`)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markexpr = str(config.getoption("markexpr", "") or "")
    if os.environ.get("VMLAB_SOAK") == "1" or ("soak" in markexpr and "not soak" not in markexpr):
        return
    skip = pytest.mark.skip(reason="soak: run with `make soak` or `pytest -m soak tests/integration/soak`")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)
