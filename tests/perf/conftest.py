"""Benchmarks stay out of the default run: they need minutes of quiet CPU and measure, not verify.

They run when asked for: `pytest -m perf tests/perf` (a marker expression naming perf) or
VMLAB_PERF=1. Otherwise each is skipped with that reason, so `make test` stays short.
"""

from __future__ import annotations

import os

import pytest


def perf_requested(config: pytest.Config) -> bool:
    markexpr = str(config.getoption("markexpr", "") or "")
    return os.environ.get("VMLAB_PERF") == "1" or ("perf" in markexpr and "not perf" not in markexpr)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if perf_requested(config):
        return
    skip = pytest.mark.skip(reason="benchmark: run with `pytest -m perf tests/perf` or VMLAB_PERF=1")
    for item in items:
        if item.get_closest_marker("perf") is not None:
            item.add_marker(skip)
