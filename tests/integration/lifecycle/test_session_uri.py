"""The same lifecycle against qemu:///session: the URI a student who is not root uses (QEMU then runs
as the caller, not as libvirt-qemu). As root, libvirt serves that URI from the system daemon (measured
here: the domain shows in both listings), so this checks that -c reaches every verb end to end and
that the verbs without -c find the guest, once; tests/integration/nonroot runs the CLI as a normal
user on the per-user daemon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vmlab.cli.main import app

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]

URI = "qemu:///session"


@pytest.fixture
def session_uri(test_home: Path, tiny_image: Any) -> str:
    from vmlab.backends.libvirt.backend import LibvirtBackend
    from vmlab.errors import VmlabError

    try:
        LibvirtBackend(uri=URI).close()
    except VmlabError as e:
        pytest.skip(f"{URI} does not answer here: {e.one_line()}")
    return URI


def test_up_exec_ls_down_on_the_session_daemon(session_uri: str) -> None:
    runner = CliRunner()
    try:
        up = runner.invoke(app, ["up", "sess1", "--kind", "vm", "-c", session_uri])
        assert up.exit_code == 0, up.output
        ran = runner.invoke(app, ["exec", "sess1", "-c", session_uri, "--", "cat", "/proc/cmdline"])
        assert ran.exit_code == 0 and "console=ttyS0" in ran.stdout
        listed = json.loads(runner.invoke(app, ["ls", "-c", session_uri, "--json"]).stdout)
        assert [r["name"] for r in listed if r["name"] == "sess1"] == ["sess1"]
        # without -c: found on every local URI, listed once even where one daemon serves both
        everywhere = json.loads(runner.invoke(app, ["ls", "--json"]).stdout)
        mine = [r for r in everywhere if r["name"] == "sess1"]
        assert len(mine) == 1 and mine[0]["uri"] in ("qemu:///system", URI)
        ran = runner.invoke(app, ["exec", "sess1", "--", "true"])
        assert ran.exit_code == 0, ran.output
    finally:
        down = runner.invoke(app, ["down", "sess1"])  # no -c: the URI it was found on
    assert down.exit_code == 0, down.output
    after = json.loads(runner.invoke(app, ["ls", "-c", session_uri, "--json"]).stdout)
    assert "sess1" not in [r["name"] for r in after]
