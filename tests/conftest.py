"""Fixtures every area shares: an isolated VMLAB_HOME and report factories."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from vmlab.report.model import ExperimentEntry, HostInfo, Report


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
    """Skip unless libvirt answers (probed, not guessed from imports)."""
    from vmlab.backends.libvirt_backend import LibvirtBackend
    from vmlab.errors import NotAvailable

    try:
        backend = LibvirtBackend()
    except NotAvailable as e:
        pytest.skip(f"libvirt not available: {e.one_line()}")
    uri = backend.uri
    backend.close()
    return uri
