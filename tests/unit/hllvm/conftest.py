"""Probes for the HLL-VM lab's tests: a tool found by shutil.which, or a skip; under CI=true a
missing tool the CI set-up installs (java, javac, javap, jasmin) is a failure, never a skip."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is not installed, and CI must install it (apt-get install ...)")
        pytest.skip(f"{tool} is not installed")
    return found


@pytest.fixture
def tool() -> Callable[[str], str]:
    return need


@pytest.fixture
def data() -> Path:
    return DATA
