"""The lifecycle CLI end to end against real libvirt and Docker: the issue's done-when scenario,
Ctrl-C during `up`, a guest that never gets ready, two parallel `up`s, `down --all` without state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import interrupt_when
from typer.testing import CliRunner

from vmlab.cli.main import app

pytestmark = [pytest.mark.libvirt, pytest.mark.docker, pytest.mark.slow]


def _vmlab_argv() -> list[str]:
    exe = Path(sys.executable).parent / "vmlab"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from vmlab.cli.main import main; main()"]


def _owned(name_prefix: str = "") -> list[dict[str, Any]]:
    res = CliRunner().invoke(app, ["ls", "--json"])
    assert res.exit_code == 0, res.output
    return [r for r in json.loads(res.stdout) if r["name"].startswith(name_prefix)]


def _libvirt_names() -> str:
    return subprocess.run(
        ["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _docker_names() -> str:
    return subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def run_id() -> str:
    from vmlab.paths import new_run_id

    return new_run_id()


@pytest.fixture
def cleanup(run_id: str) -> Any:
    """Whatever a test leaves in its run is destroyed, pass or fail."""
    yield run_id
    CliRunner().invoke(app, ["down", "--run", run_id])


def test_done_when_scenario(
    tiny_image: Any, libvirt_available: str, docker_available: None, cleanup: str
) -> None:
    runner = CliRunner()
    run = cleanup
    r = runner.invoke(app, ["up", "lg1", "--kind", "vm", "--run", run, "--json"])
    assert r.exit_code == 0, r.output
    up = json.loads(r.stdout)
    assert list(up["ladder_s"]) == [
        "create_called",
        "created",
        "process_running",
        "serial_marker",
        "ssh_port",
        "ssh_banner",
        "first_command",
    ]
    r = runner.invoke(app, ["up", "lc1", "--kind", "container", "--run", run, "--json"])
    assert r.exit_code == 0, r.output
    assert list(json.loads(r.stdout)["ladder_s"]) == ["create_called", "created", "running", "first_exec"]

    r = runner.invoke(app, ["up", "lg1", "--kind", "container", "--run", run])
    assert r.exit_code == 2 and "exists already" in r.output

    r = runner.invoke(app, ["exec", "lg1", "--", "uname", "-r"])
    assert r.exit_code == 0 and r.stdout.strip() == tiny_image.manifest.kernel_release
    r = runner.invoke(app, ["exec", "lc1", "--", "cat", "/proc/1/cgroup"])
    assert r.exit_code == 0 and "docker" in r.stdout
    r = runner.invoke(app, ["exec", "lg1", "--", "sh", "-c", "exit 9"])
    assert r.exit_code == 9

    rows = {r["name"]: r for r in _owned("l")}
    assert rows["lg1"]["kind"] == "vm" and rows["lg1"]["state"] == "running"
    assert rows["lg1"]["address"].startswith("ssh://root@127.0.0.1:")
    assert rows["lc1"]["kind"] == "container" and rows["lc1"]["state"] == "running"
    assert rows["lg1"]["uptime_s"] is not None

    ssh = subprocess.run(
        [*_vmlab_argv(), "ssh", "lg1"], input="uname -r\nexit\n", capture_output=True, text=True, timeout=60
    )  # OpenSSH with the pinned key, no tty: runs stdin
    assert ssh.returncode == 0 and tiny_image.manifest.kernel_release in ssh.stdout, ssh.stderr

    r = runner.invoke(app, ["console", "lg1", "--lines", "5"])
    assert r.exit_code == 0 and "VMLAB_READY" in r.stdout

    r = runner.invoke(app, ["down", "--run", run, "--json"])
    assert r.exit_code == 0, r.output
    assert {d["name"] for d in json.loads(r.stdout)["destroyed"]} == {"lg1", "lc1"}
    assert run not in _libvirt_names() and run not in _docker_names()


def test_sigint_during_up_cleans_up(tiny_image: Any, libvirt_available: str, cleanup: str) -> None:
    run = cleanup
    proc = subprocess.Popen(
        [*_vmlab_argv(), "up", "sig1", "--kind", "vm", "--run", run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    # the domain exists: we interrupt in the middle of `up`
    got = interrupt_when(proc, lambda: run in _libvirt_names(), what="the domain appearing")
    assert got.sent, got.stderr
    assert got.returncode == 130, got.stderr
    assert "interrupted" in got.stderr
    assert run not in _libvirt_names()
    from vmlab.paths import runs_dir

    assert not (runs_dir() / run / "sig1").exists()


def test_guest_never_ready_fails_with_console_and_cleans_up(
    tiny_image: Any, libvirt_available: str, cleanup: str
) -> None:
    run = cleanup
    r = subprocess.run(
        [
            *_vmlab_argv(),
            "up",
            "hang1",
            "--run",
            run,
            "--timeout",
            "8",
            "--kernel-args",
            "rdinit=/bin/sleep -- 600",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 5, r.stderr
    assert "serial ready marker not reached" in r.stderr
    assert "console|" in r.stderr  # the last console lines are shown
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("error:")] != []
    assert run not in _libvirt_names()


def test_two_parallel_ups_then_down_all_without_state(
    tiny_image: Any, libvirt_available: str, cleanup: str
) -> None:
    run = cleanup
    procs = [
        subprocess.Popen(
            [*_vmlab_argv(), "up", name, "--run", run, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("par1", "par2")
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    addresses = {json.loads(out)["address"] for out, _ in outs}
    assert len(addresses) == 2  # distinct SSH ports
    for name in ("par1", "par2"):
        r = CliRunner().invoke(app, ["exec", name, "--", "hostname"])
        assert r.exit_code == 0 and r.stdout.strip() == "vmlab-tiny"

    from vmlab.paths import runs_dir

    shutil.rmtree(runs_dir() / run)  # local state gone: down must find the domains by metadata
    r = CliRunner().invoke(app, ["down", "--all", "--json"])
    assert r.exit_code == 0, r.output
    destroyed = {d["name"] for d in json.loads(r.stdout)["destroyed"]}
    assert {"par1", "par2"} <= destroyed
    assert run not in _libvirt_names()


def test_bad_inputs_get_one_clear_line(tiny_image: Any) -> None:
    runner = CliRunner()
    cases = [
        (["up", "Bad!"], 2, "invalid name"),
        (["up", "x1", "--image", "nope"], 2, "unknown image"),
        (["up", "x1", "--memory", "16"], 2, "minimum"),
        (["up", "x1", "--connect", "qemu+tcp://127.0.0.1:1/system"], 3, "does not answer"),
        (["exec", "nobody-here", "--", "true"], 2, "no instance named"),
        (["down"], 2, "say what to destroy"),
    ]
    for argv, code, text in cases:
        r = runner.invoke(app, argv)
        lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
        assert r.exit_code == code, (argv, r.output)
        assert len(lines) == 1 and text in lines[0], (argv, r.output)


def test_docker_down_is_one_clear_line(tiny_image: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    r = CliRunner().invoke(app, ["up", "dc1", "--kind", "container"])
    assert r.exit_code == 3, r.output
    assert "Docker daemon not reachable" in r.output


def test_two_parallel_ups_with_one_name_create_one_instance(
    tiny_image: Any, libvirt_available: str, docker_available: None, cleanup: str
) -> None:
    """Name check and creation are atomic: of a VM and a container both called `twin`, one wins."""
    run = cleanup
    procs = [
        subprocess.Popen(
            [*_vmlab_argv(), "up", "twin", "--kind", kind, "--run", run],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind in ("vm", "container")
    ]
    results = [(p, *p.communicate(timeout=180)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [err for _, _, err in results]
    loser_err = next(err for p, _, err in results if p.returncode == 2)
    assert "exists already" in loser_err
    assert [r["name"] for r in _owned("twin")] == ["twin"]
