"""A re-run container of `vmlab grade` is not an instance: `vmlab ls` does not list it and
`vmlab down --all` leaves it running (issue #20: it used to carry the `vmlab.owner` label they select on)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vmlab.cli.main import app

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _container_with(token: str) -> str | None:
    """The id of the running container whose command holds `token`, by the docker CLI (not vmlab)."""
    out = subprocess.run(
        ["docker", "ps", "--no-trunc", "--format", "{{.ID}} {{.Command}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ids = [line.split()[0] for line in out.splitlines() if token in line]
    return ids[0] if ids else None


def test_down_all_leaves_a_grading_container_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_available: None
) -> None:
    from vmlab.grade.sandbox import Limits, Sandbox

    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "home"))  # --all stays within this fresh home
    token = f"t{uuid.uuid4().hex}"
    box = Sandbox()
    result: dict[str, Any] = {}
    # the container sleeps until the test kills it; `token` names it in `docker ps`
    argv = ["-c", f"import time; time.sleep(120)  # {token}"]
    worker = threading.Thread(
        target=lambda: result.update(r=box.run(argv, {}, Limits(timeout_s=150))), daemon=True
    )
    worker.start()
    cid = None
    try:
        deadline = time.monotonic() + 60
        while cid is None and time.monotonic() < deadline and worker.is_alive():
            cid = _container_with(token)
            time.sleep(0.2)
        assert cid is not None, result
        ls = CliRunner().invoke(app, ["ls", "--json"])
        assert ls.exit_code == 0, ls.output
        resources = {r["resource"] for r in json.loads(ls.stdout)}
        name = subprocess.run(
            ["docker", "inspect", "--format", "{{.Name}}", cid], capture_output=True, text=True, check=True
        ).stdout.strip("/\n")
        assert name not in resources
        down = CliRunner().invoke(app, ["down", "--all", "--json"])
        assert down.exit_code == 0, down.output
        assert _container_with(token) == cid  # still running
    finally:
        if cid is not None:
            subprocess.run(["docker", "kill", cid], capture_output=True)
        worker.join(60)
    assert result["r"].rc != 0  # killed, as the test asked, not finished by itself


def test_a_rerun_container_is_locked_down(docker_available: None) -> None:
    """Inside, as the kernel reports it: no interface but loopback (/proc/net/dev), no effective
    capability (CapEff in /proc/self/status is 0), a read-only root, /in read-only, user nobody."""
    from vmlab.grade.sandbox import Limits, Sandbox

    token = f"t{uuid.uuid4().hex}"
    code = (
        f"import json, os  # {token}\n"
        "ifs = [l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]]\n"
        "cap = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0]\n"
        "def writable(p):\n"
        "    try:\n"
        "        open(p, 'w').close(); return True\n"
        "    except OSError:\n"
        "        return False\n"
        "print(json.dumps({'ifs': ifs, 'cap': cap, 'root': writable('/x'), 'in': writable('/in/y'),"
        " 'tmp': writable('/tmp/z'), 'uid': os.getuid()}))\n"
    )
    r = Sandbox().run(["-c", code], {"f": b"1"}, Limits(timeout_s=60))
    assert r.rc == 0, r.stderr
    got = r.result_json()
    assert got == {
        "ifs": ["lo"],
        "cap": "0000000000000000",
        "root": False,
        "in": False,
        "tmp": True,
        "uid": 65534,
    }
    left = subprocess.run(
        ["docker", "ps", "-a", "--no-trunc", "--format", "{{.Command}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert token not in left  # the container was removed after the run
