"""Faults injected into real runs: dockerd going away mid-compare or too busy to answer, gVisor's
Sentry killed.

dockerd itself is shared by everyone on a lab machine or CI runner, so its death is injected for this
process only: the Docker client talks to dockerd through a UNIX-socket relay the test owns, and the
relay is cut in the middle of the run (to vmlab exactly a daemon that stopped answering) or stalled
for a while (a daemon that is alive but too busy to answer in time).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vmlab.backends.base import InstanceSpec
from vmlab.errors import BackendError
from vmlab.paths import new_run_id

pytestmark = [pytest.mark.docker]


class Relay:
    """Forwards a UNIX socket to dockerd's until cut(): then every connection drops and none opens."""

    def __init__(self, path: Path, target: str = "/var/run/docker.sock") -> None:
        self.path, self.target = path, target
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(32)
        self.conns: list[socket.socket] = []
        self.cut_now = False
        self.flowing = threading.Event()  # cleared by stall(): a daemon that is alive but busy
        self.flowing.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_now:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                self.flowing.wait()
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stall(self, seconds: float) -> None:
        """Hold every byte for `seconds` from now, then let it flow: dockerd busy, not dead."""
        self.flowing.clear()
        threading.Timer(seconds, self.flowing.set).start()

    def cut(self) -> None:
        self.cut_now = True
        self.flowing.set()
        self.server.close()
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
                c.close()


@pytest.fixture
def relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_available: None) -> Iterator[Relay]:
    r = Relay(tmp_path / "docker.sock")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{r.path}")
    try:
        yield r
    finally:
        r.cut()


def _leftovers(run_id: str) -> list[str]:
    import subprocess

    out = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"label=vmlab.run_id={run_id}"],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"},  # the real daemon
    )
    return out.stdout.split()


def test_dockerd_gone_mid_compare_keeps_finished_kinds(
    relay: Relay, test_home: Path, tiny_image: Any, tmp_path: Path
) -> None:
    """The container kind finishes, then dockerd stops answering as the sandbox starts: one line
    naming dockerd, exit 4, the container's figures kept in the partial report."""
    from vmlab.labs.pipeline import RunRequest, run_lab

    def progress(message: str) -> None:
        if "sandbox (docker-runsc): cold start" in message:
            relay.cut()

    sets = {"compare": {"runs": 1, "kinds": ["container", "sandbox"], "only": ["startup"]}}
    request = RunRequest(lab="system-vm", steps=["compare"], sets=sets, output=tmp_path / "r.json")
    result = run_lab(request, progress)
    step = result.report.steps["compare"]
    assert step.status == "error" and "dockerd does not answer" in step.message
    assert "\n" not in step.message and result.report.run.status == "partial"
    kept = result.report.experiments["startup"]
    assert isinstance(kept, dict) and set(kept) == {"native", "container"}
    assert result.report.steps["compare"].experiments == ["startup"]
    assert _leftovers(result.report.run_id) == []


RUNSC_ROOT = Path("/var/run/docker/runtime-runc/moby")  # runsc's state, as Docker's shim runs it
RUNSC_LOGS = Path("/var/log/runsc")  # the Sentry's logs, where set-up registers runsc to write them


def _sentry_pids(container_id: str) -> list[int]:
    """The sandbox's Sentry: `runsc-sandbox ... boot` whose arguments hold the container's bundle."""
    import subprocess

    out = subprocess.run(
        ["pgrep", "-f", f"runsc-sandbox .*{container_id}"], capture_output=True, text=True, check=False
    )
    return [int(p) for p in out.stdout.split()]


def _runsc_leftovers(container_id: str, logs_before: set[Path]) -> list[str]:
    """runsc state naming the sandbox, a Sentry still running, and Sentry logs that are new and name
    it (or are empty: a Sentry killed as it started writes not even its arguments)."""
    left = [f"runsc state {p}" for p in RUNSC_ROOT.glob(f"*{container_id}*")]
    left += [f"sentry pid {p}" for p in _sentry_pids(container_id)]
    for log in set(RUNSC_LOGS.glob("*.boot.txt")) - logs_before:
        head = log.read_bytes()[:8192]
        if not head or container_id.encode() in head:
            left.append(f"sentry log {log}")
    return left


# The container ladder (readiness.CONTAINER_LADDER): create_called and created are dockerd's alone,
# with no Sentry yet; `start` kills the Sentry the moment it appears (while Docker's start runs),
# `running` after start returned, `first_exec` after Docker's start event was stamped (so the ladder's
# first exec meets a dead Sentry), `ready` after the whole ladder, at the next exec.
SENTRY_STAGES = ("start", "running", "first_exec", "ready")


@pytest.mark.parametrize("stage", SENTRY_STAGES)
def test_a_sentry_killed_at_each_readiness_stage_is_named_and_leaves_nothing(
    stage: str, test_home: Path, tiny_image: Any, docker_available: None
) -> None:
    import threading
    import time

    from tests.integration.conftest import require_runtime

    from vmlab.backends import open_runtime

    require_runtime("docker-runsc")
    if os.geteuid() != 0:
        pytest.skip("killing the Sentry and reading runsc's state needs root")
    logs_before = set(RUNSC_LOGS.glob("*.boot.txt"))
    run_id = new_run_id()
    backend = open_runtime("docker-runsc")
    inst = backend.create(InstanceSpec(name=f"sk-{stage.replace('_', '-')}", run_id=run_id, lab="tests"))
    cid = inst.container.id  # type: ignore[attr-defined]
    killed: list[int] = []

    def kill_when_it_appears() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            for pid in _sentry_pids(cid):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.002)

    def kill_now() -> None:
        (pid,) = _sentry_pids(cid)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    try:
        with pytest.raises(BackendError) as info:
            if stage == "start":
                threading.Thread(target=kill_when_it_appears, daemon=True).start()
            inst.start()
            if stage == "running":
                kill_now()
            elif stage == "first_exec":
                while inst.start_event() is None:  # type: ignore[attr-defined]
                    time.sleep(0.01)
                kill_now()
            inst.wait_ready()
            assert stage == "ready", f"the ladder was climbed past a Sentry killed at {stage}"
            kill_now()
            for _ in range(50):  # the next exec meets the dead Sentry
                inst.exec(["true"], timeout=10)
    finally:
        inst.destroy()
        backend.close()
    assert killed, f"no Sentry of {cid} was seen to kill"
    err = info.value
    assert err.exit_code == 4 and "\n" not in err.one_line()
    assert "gVisor's Sentry (the sandbox's kernel" in err.message and " died " in err.message
    assert err.hint is not None and "killed from outside or crashed" in err.hint
    assert "dockerd does not answer" not in err.message and "slow host" not in err.one_line()
    if stage != "start":  # Docker's die event carries the exit status: 128 + SIGKILL
        assert ") died (killed by SIGKILL)" in err.message
    if stage == "ready":  # the pid is looked up after the timed ladder only
        assert f"pid {killed[0]}) died" in err.message
    assert _leftovers(run_id) == []
    assert _runsc_leftovers(cid, logs_before) == []


def test_two_compares_at_once_both_complete(test_home: Path, tiny_image: Any, tmp_path: Path) -> None:
    """Two students on one lab machine: instance names are unique per run, so neither refuses."""
    import subprocess
    import sys

    args = ["compare", "--runs", "1", "--only", "startup", "--kinds", "container,sandbox", "--no-plots"]
    vmlab = str(Path(sys.executable).with_name("vmlab"))
    procs = [
        subprocess.Popen(
            [vmlab, *args, "-o", str(tmp_path / f"r{i}" / "report.json")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [(p.wait(timeout=600), p.stderr.read() if p.stderr else "") for p in procs]
    for rc, err in results:
        assert rc == 0, err[-2000:]


def test_a_busy_dockerd_is_retried_and_then_reported_as_slow_not_dead(relay: Relay) -> None:
    from vmlab.backends.docker.backend import DockerBackend
    from vmlab.backends.docker.errors import SLOW_ATTEMPTS, DaemonGone, DaemonSlow
    from vmlab.images.docker_image import docker_client

    backend = DockerBackend(docker_client(timeout=2))  # through the relay (DOCKER_HOST)
    try:
        relay.stall(3.0)  # the first attempt times out after 2 s, the second is answered at 3 s
        assert isinstance(backend.list_owned(), list)
        relay.stall(2.0 * SLOW_ATTEMPTS + 2.0)  # longer than every attempt: reported, as slow
        with pytest.raises(DaemonSlow) as info:
            backend.list_owned()
        assert not isinstance(info.value, DaemonGone)
        assert info.value.one_line() == (
            f"listing containers failed: dockerd did not answer within 2 s, {SLOW_ATTEMPTS} times "
            "(it runs, but is busy) (fix: retry when the host is less busy (other runs, a test suite))"
        )
    finally:
        backend.close()
