"""The C baseline (labs/kvm-api/c/cvmm.c) compiled with the real gcc and run on the real /dev/kvm: it
must see exactly the exits the Python VMM sees for the same bytes.

Hand counts: hello has 2 OUT and a hlt; out N loops N times over one OUT, then hlt; mmio N stores N
times to an address no memory slot backs (N MMIO), then hlt; console-bytewise L prints L bytes with
one OUT each, then hlt; hello-pm is hello in 32-bit mode.
"""

import shutil
from pathlib import Path

import pytest

from vmlab.errors import BackendError
from vmlab.kvmapi.cbase import build, run_c, source_path
from vmlab.kvmapi.programs import builtin
from vmlab.kvmapi.vmm import run_program
from vmlab.labs.catalog import lab_dir

pytestmark = pytest.mark.kvm


@pytest.fixture(scope="module")
def cvmm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        from tests.conftest import unavailable

        unavailable("gcc", "is not installed (scripts/setup-host.sh installs it)")
    return build(tmp_path_factory.mktemp("cvmm"), source_path(lab_dir("kvm-api")))


@pytest.mark.parametrize(
    ("name", "n", "exits"),
    [
        ("hello", None, {"IO": 2, "HLT": 1}),
        ("hello-pm", None, {"IO": 2, "HLT": 1}),
        ("out", 500, {"IO": 500, "HLT": 1}),
        ("mmio", 200, {"MMIO": 200, "HLT": 1}),
        ("console-bytewise", 100, {"IO": 100, "HLT": 1}),
    ],
)
def test_c_and_python_see_the_same_exits(
    kvm_device: str, cvmm: Path, tmp_path: Path, name: str, n: int | None, exits: dict[str, int]
) -> None:
    program = builtin(name, n)
    c = run_c(cvmm, program, tmp_path)
    assert c.exits == exits and c.stop == "HLT"
    assert dict(run_program(program).exits) == exits
    assert c.loop_ns > 0


def test_c_output_bytes_and_debug_exit(kvm_device: str, cvmm: Path, tmp_path: Path) -> None:
    # debug-exit: 'o', 'k', '\n' on the serial port (3 IO), then the OUT to 0xf4 (the 4th IO) stops it
    c = run_c(cvmm, builtin("debug-exit"), tmp_path)
    assert c.exits == {"IO": 4} and c.stop == "debug-exit" and c.output_bytes == 3


def test_c_guest_fault_is_an_error(kvm_device: str, cvmm: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="the C VMM failed on triple-fault"):
        run_c(cvmm, builtin("triple-fault"), tmp_path)


def test_c_timeout(kvm_device: str, cvmm: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="timeout"):
        run_c(cvmm, builtin("runaway"), tmp_path, timeout=1)


def test_missing_gcc_is_one_line_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vmlab.errors import NotAvailable

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotAvailable, match="gcc is not installed") as e:
        build(tmp_path / "out", source_path(lab_dir("kvm-api")))
    assert e.value.hint is not None and "setup-host.sh" in e.value.hint
