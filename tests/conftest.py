"""Fixtures every area shares: an isolated VMLAB_HOME, report factories, and the rule for skips.

A skip is decided by a probe independent of the code under test (virsh, the docker CLI, opening
/dev/kvm), and under CI=true a test whose requirement `make test` itself sets up never skips: it
fails with the probe's reason, so a broken set-up cannot turn tests into silent skips.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from vmlab.report.model import ExperimentEntry, HostInfo, Report

IN_CI = os.environ.get("CI") == "true"


def unavailable(what: str, reason: str, *, set_up_by_make_test: bool = True) -> NoReturn:
    """Skip with the reason; under CI=true, for what `make test` provides, fail instead."""
    if IN_CI and set_up_by_make_test:
        pytest.fail(f"{what} must be available under CI (make test sets it up), but: {reason}")
    pytest.skip(f"{what} not available: {reason}")


def probe_command(argv: list[str], timeout: float = 30.0) -> str | None:
    """None when the command succeeds, else why not (its last line of output)."""
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} is not installed"
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"{' '.join(argv)} did not answer within {timeout:g} s"
    if p.returncode == 0:
        return None
    lines = (p.stderr or p.stdout).strip().splitlines()
    return lines[-1] if lines else f"{' '.join(argv)} exited with {p.returncode}"


# The fixtures that probe a requirement, and the marker that names it: a test using one (directly or
# through another fixture) carries the marker, so `-m "not kvm"` leaves out every test that needs KVM.
NEEDS = {
    "libvirt_available": "libvirt",
    "docker_available": "docker",
    "docker_ok": "docker",
    "kvm_ok": "kvm",
    "browser": "chromium",
}


def markers_missing(item: pytest.Item) -> list[str]:
    """The markers the fixtures of `item` ask for that it does not carry."""
    used = getattr(item, "fixturenames", ())
    return sorted({m for f, m in NEEDS.items() if f in used and item.get_closest_marker(m) is None})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add what a test's fixtures need as markers, where the module forgot one (marks are what
    `-m` selects on, and a forgotten one would run a KVM test under `-m "not kvm"`)."""
    for item in items:
        for marker in markers_missing(item):
            item.add_marker(getattr(pytest.mark, marker))


def import_or_unavailable(module: str) -> Any:
    """The module, or a skip naming it (a failure under CI: make test's venv installs every extra)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        unavailable(f"the Python module {module}", f"{e} (pip install -e '.[dev,vm]')")


def need_program(program: str, package: str) -> str:
    """The program's path, or a skip naming its Debian package (a failure under CI: make setup
    installs it)."""
    found = shutil.which(program)
    if found is None:
        unavailable(program, f"not on PATH (apt-get install {package})")
    return found


@pytest.fixture
def vmlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private VMLAB_HOME so a test's runs never mix with the user's."""
    home = tmp_path / "vmlab-home"
    monkeypatch.setenv("VMLAB_HOME", str(home))
    return home


def _host() -> HostInfo:
    return HostInfo(
        hostname="test",
        kernel="6.1",
        os="Debian",
        arch="x86_64",
        cpu_model="test cpu",
        cpu_count=2,
        memory_bytes=1 << 30,
        python="3.11",
        hw_virt=False,
        accel="tcg",
        accel_reason="test",
    )


@pytest.fixture
def make_report() -> Callable[..., Report]:
    def make(experiments: dict[str, ExperimentEntry], lab: str = "warmup") -> Report:
        return Report(
            vmlab_version="0.1.0",
            lab=lab,
            run_id="test-run",
            created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            host=_host(),
            experiments=experiments,
        )

    return make


@pytest.fixture(scope="session")
def libvirt_available() -> str:
    """The URI the suite uses, once `virsh -c URI version` answers (libvirt's own client, not vmlab)."""
    from vmlab.host.libvirt import default_uri

    uri = default_uri()
    why = probe_command(["virsh", "-c", uri, "version"])
    if why is not None:
        unavailable(f"libvirt at {uri}", why)
    return uri
