"""containerd, dockerd's own (a child of dockerd on hosts without systemd), killed while a container
starts and while it runs. Each run is the `vmlab` CLI in its own process, as a student starts it.

What a SIGKILL of that containerd does here (Docker 20.10, containerd 1.6; measured when this was
written): dockerd keeps answering from its own state (`docker ps`, create), start and exec fail at
once ("dial unix .../containerd.sock: connect: connection refused"), `rm -f` fails after ~12 s ("did
not receive an exit event"), running containers survive (their shims do), and dockerd starts a new
containerd ~10 s after the old one died. That new containerd inherits dockerd's TMPDIR
(/var/lib/docker/tmp), which a gVisor sandbox cannot open: runsc sandboxes fail to start until dockerd
itself is restarted. So the fixture restarts dockerd afterwards (as set-up starts it), once no
container runs, and the test refuses to start while other containers run (it would disturb them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

VMLAB = str(Path(sys.executable).with_name("vmlab"))
DOCKERD_LOG = Path("/var/log/vmlab/dockerd.log")  # where scripts/setup-host.sh sends dockerd's output
NAMES = ("ctdstart", "ctdrun", "ctdsbx")  # the instances these tests start
GONE = "containerd, which runs dockerd's containers, does not answer"


def _pid(name: str) -> int | None:
    """The process `name` of this host's own daemons: one in our mount namespace (another dockerd may
    run beside it, in a chroot or a nested test's namespace, with a containerd of its own), and for
    containerd, a child of that dockerd."""
    me = os.readlink("/proc/self/ns/mnt")
    want_parent = _pid("dockerd") if name == "containerd" else None
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False).stdout.split()
    for pid in map(int, out):
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") != me:
                continue
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if want_parent is None or ppid == want_parent:
            return pid
    return None


def _docker(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def _running() -> list[str]:
    """Running containers: what a dockerd restart would stop (created ones survive it)."""
    return _docker("ps", "-q").stdout.split()


def _containerd_has_dockerds_tmpdir() -> bool:
    """A containerd that dockerd restarted carries TMPDIR=/var/lib/docker/tmp (runsc cannot use it)."""
    pid = _pid("containerd")
    if pid is None:
        return True
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return b"TMPDIR=/var/lib/docker/tmp" in env


def _wait(check: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.2)


def _restart_dockerd() -> None:
    """Stop dockerd (it stops its containerd) and start it as set-up does, without systemd."""
    pid = _pid("dockerd")
    if pid is not None:
        os.kill(pid, 15)
        _wait(lambda: _pid("dockerd") is None, "dockerd stopped", 60)
    with DOCKERD_LOG.open("ab") as log:
        subprocess.Popen(
            ["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    _wait(lambda: _docker("version").returncode == 0, "dockerd answers again", 60)


@pytest.fixture
def dockerds_containerd(docker_available: None) -> Iterator[None]:
    """containerd as dockerd's child, nothing else running on dockerd; healthy again afterwards."""
    if os.geteuid() != 0:
        pytest.skip("killing dockerd's containerd needs root")
    if _pid("dockerd") is None or _pid("containerd") is None:
        pytest.skip("containerd here is not dockerd's child (systemd runs it): not this fault")
    if _running():
        pytest.skip("other containers run on dockerd: restarting it afterwards would stop them")
    try:
        yield
    finally:
        _wait(lambda: _pid("containerd") is not None, "dockerd restarted containerd", 60)
        for name in NAMES:  # a failed test's own container must not hold up the restart below
            for cid in _docker("ps", "-aq", "--filter", f"label=vmlab.name={name}").stdout.split():
                _docker("rm", "-f", cid, timeout=60)
        if _containerd_has_dockerds_tmpdir():  # gVisor would fail for everyone after: restart dockerd
            _wait(lambda: not _running(), "no container runs (to restart dockerd)", 600)
            _restart_dockerd()
        assert not _containerd_has_dockerds_tmpdir()


def _vmlab(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VMLAB, *args], capture_output=True, text=True, timeout=timeout, check=False)


def _error_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def _ours(home: Path) -> list[str]:
    """Containers made from this VMLAB_HOME (vmlab labels each with its home)."""
    return _docker("ps", "-aq", "--filter", f"label=vmlab.home={home}").stdout.split()


CTR = ["ctr", "--address", "/run/docker/containerd/containerd.sock", "--namespace", "moby"]


def _containerd_orphans() -> set[str]:
    """What containerd keeps that dockerd does not know: container records and shim processes (both
    left here by a containerd killed during a start, before vmlab removed them)."""
    docker_ids = set(_docker("ps", "-aq", "--no-trunc").stdout.split())
    out = subprocess.run([*CTR, "containers", "ls", "-q"], capture_output=True, text=True, check=False)
    records = set(out.stdout.split())
    shims = subprocess.run(
        ["pgrep", "-a", "-f", "containerd-shim-runc-v2 -namespace moby -id"], capture_output=True, text=True
    ).stdout.split("\n")
    shim_ids = {line.split(" -id ")[1].split()[0] for line in shims if " -id " in line}
    return {f"record {i}" for i in records - docker_ids} | {f"shim {i}" for i in shim_ids - docker_ids}


def _kill_containerd() -> float:
    pid = _pid("containerd")
    assert pid is not None
    os.kill(pid, 9)
    return time.monotonic()


def test_containerd_killed_while_a_container_starts_is_named_and_leaves_nothing(
    dockerds_containerd: None, test_home: Path, tiny_image: Any
) -> None:
    orphans_before = _containerd_orphans()
    proc = subprocess.Popen(
        [VMLAB, "up", "ctdstart", "--kind", "container", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    while "defined on docker; starting" not in (seen[-1] if seen else ""):
        line = proc.stderr.readline()
        assert line, f"vmlab ended before starting the container: {''.join(seen)}"
        seen.append(line)
    _kill_containerd()  # as Docker's start runs (or just before: either way containerd is gone)
    _out, rest = proc.communicate(timeout=180)
    err = "".join(seen) + rest
    line = _error_line(err)
    assert proc.returncode == 4, err
    assert GONE in line and "dockerd does not answer" not in line
    assert "fix: dockerd starts containerd again within ~10 s" in line
    assert "warning" not in err  # vmlab waited for containerd and removed the container itself
    assert _ours(test_home) == []
    assert _containerd_orphans() - orphans_before == set()


def test_containerd_killed_while_a_container_runs_exec_names_it_and_down_waits(
    dockerds_containerd: None, test_home: Path, tiny_image: Any
) -> None:
    up = _vmlab("up", "ctdrun", "--kind", "container", "--timeout", "60")
    assert up.returncode == 0, up.stderr
    killed_at = _kill_containerd()
    run = _vmlab("exec", "ctdrun", "--", "true", timeout=60)  # dockerd says exit 126, no output
    assert time.monotonic() - killed_at < 10, "exec ran after containerd was back: nothing tested"
    line = _error_line(run.stderr)
    assert run.returncode == 4, run.stderr
    assert GONE in line and "exec in vmlab-" in line and "dockerd does not answer" not in line
    assert _ours(test_home), "the container should outlive its containerd"
    down = _vmlab("down", "ctdrun")  # at once: it waits for the containerd dockerd restarts
    assert down.returncode == 0, down.stderr
    assert _ours(test_home) == []
    # the containerd dockerd started again hands gVisor dockerd's TMPDIR: a sandbox cannot start now
    # (until the fixture restarts dockerd), and vmlab names that instead of runsc's bare "EOF"
    from tests.integration.conftest import require_runtime

    require_runtime("docker-runsc")
    if not _containerd_has_dockerds_tmpdir():
        return  # a Docker that does not hand its TMPDIR on: nothing more to see
    sandbox = _vmlab("up", "ctdsbx", "--kind", "sandbox", "--timeout", "60")
    line = _error_line(sandbox.stderr)
    print(line)  # shown with -rP: proof this part ran
    assert sandbox.returncode == 4, sandbox.stderr
    assert (
        "gVisor could not start the sandbox: its Sentry cannot set up its chroot in /var/lib/docker/tmp"
        in line
    )
    assert "fix: restart dockerd" in line
    assert _ours(test_home) == []


def test_containerd_killed_during_a_compare_ends_the_step_and_leaves_nothing(
    dockerds_containerd: None, test_home: Path, tiny_image: Any, tmp_path: Path
) -> None:
    """The container kind of `compare`: its first cold start done, containerd dies as the second
    begins. The step ends with one line naming containerd, the report is kept (partial, valid) and
    the container is removed once dockerd has containerd back."""
    from vmlab.labs.pipeline import RunRequest, run_lab
    from vmlab.report.io import load_report

    def progress(message: str) -> None:
        if "container (docker): cold start 2/2" in message:
            _kill_containerd()

    orphans_before = _containerd_orphans()
    sets = {"compare": {"runs": 2, "kinds": ["container"], "only": ["startup"]}}
    out = tmp_path / "r.json"
    request = RunRequest(lab="system-vm", steps=["compare"], sets=sets, output=out)
    result = run_lab(request, progress)
    step = result.report.steps["compare"]
    assert step.status == "error" and GONE in step.message and "\n" not in step.message
    assert "dockerd does not answer" not in step.message
    assert result.report.run.status == "partial"
    assert load_report(out).run.status == "partial"  # the file on disk is whole and valid
    left = _docker("ps", "-aq", "--filter", f"label=vmlab.run_id={result.report.run_id}").stdout.split()
    assert left == []
    assert _containerd_orphans() - orphans_before == set()
