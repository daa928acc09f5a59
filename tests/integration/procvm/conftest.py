"""Skips for the process-VM lab, decided by probing PATH (never by the code under test).

Under CI=true the set-up installs these programs, so a missing one fails the test instead of skipping.
"""

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

DATA = Path(__file__).parents[2] / "unit" / "procvm" / "data"


def need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if not missing:
        return
    msg = f"not on PATH: {', '.join(missing)}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{msg} (CI installs them: scripts/setup-host.sh)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def asm_program(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Assemble tests/unit/procvm/data/loop_<arch>.S (the hand-counted guest) once per session."""
    out = tmp_path_factory.mktemp("asm")
    cc = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}

    def make(arch: str) -> Path:
        need(cc[arch])
        exe = out / f"loop_{arch}"
        if not exe.exists():
            subprocess.run(
                [cc[arch], "-nostdlib", "-static", "-o", str(exe), str(DATA / f"loop_{arch}.S")], check=True
            )
        return exe

    return make
