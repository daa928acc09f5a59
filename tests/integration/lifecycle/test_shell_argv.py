"""`vmlab ssh` asks the instance for its shell command (issue #20): on a gVisor sandbox that is
`docker exec -it`, which used to fall into the OpenSSH branch and die with KeyError: 'ssh_port'."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vmlab.cli.main import app

pytestmark = [pytest.mark.docker]

# A `docker` first on PATH that records its argv, then runs the real docker CLI without -t (a test has
# no terminal), so the shell reads the commands the test writes on stdin.
FAKE_DOCKER = """#!/bin/sh
printf '%s\\n' "$@" > "{record}"
for a; do shift; [ "$a" = "-it" ] && a="-i"; set -- "$@" "$a"; done
exec {docker} "$@"
"""


def _vmlab_argv() -> list[str]:
    return [sys.executable, "-c", "from vmlab.cli.main import main; main()"]


def test_ssh_on_a_sandbox_opens_a_shell(test_home: Path, tiny_image: Any, tmp_path: Path) -> None:
    from tests.integration.conftest import require_runtime

    from vmlab.paths import new_run_id

    require_runtime("docker-runsc")
    real = shutil.which("docker")
    assert real is not None
    record = tmp_path / "argv"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text(FAKE_DOCKER.format(record=record, docker=real))
    (bindir / "docker").chmod(0o755)
    run_id = new_run_id()
    try:
        up = CliRunner().invoke(app, ["up", "sh1", "--kind", "sandbox", "--run", run_id, "--json"])
        assert up.exit_code == 0, up.output
        resource = json.loads(up.stdout)["resource"]
        env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
        res = subprocess.run(
            [*_vmlab_argv(), "ssh", "sh1"],
            input="echo in-$(uname -s)-shell\nexit 0\n",
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert res.returncode == 0, res.stderr
        # expected by hand: the Docker CLI's interactive exec of /bin/sh in the container vmlab made
        assert record.read_text().split("\n")[:-1] == ["exec", "-it", resource, "/bin/sh"]
        assert "in-Linux-shell" in res.stdout
    finally:
        CliRunner().invoke(app, ["down", "--run", run_id])
    names = subprocess.run([real, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True)
    assert resource not in names.stdout
