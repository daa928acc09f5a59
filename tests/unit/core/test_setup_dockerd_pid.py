"""Set-up's reload of dockerd (after registering runsc) signals the system daemon only, also when a
second dockerd runs (rootless Docker beside the system one): `kill -HUP "$(pidof dockerd)"` would get
two pids. The function is taken from scripts/setup-host.sh and run by bash against real processes
named dockerd (copies of sleep)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "setup-host.sh"


def function_text() -> str:
    lines = SCRIPT.read_text().splitlines()
    start = lines.index("dockerd_pid() {")
    end = lines.index("}", start)
    return "\n".join(lines[start : end + 1])


@pytest.fixture
def two_dockerds(tmp_path: Path) -> Iterator[list[int]]:
    fake = tmp_path / "dockerd"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    procs = [subprocess.Popen([str(fake), "60"]) for _ in range(2)]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def run(pidfile: Path) -> str:
    script = f"{function_text()}\ndockerd_pid\n"
    env = {"PATH": "/usr/bin:/bin", "VMLAB_DOCKER_PIDFILE": str(pidfile)}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, check=True).stdout


def test_the_pid_file_names_the_one_to_signal(tmp_path: Path, two_dockerds: list[int]) -> None:
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text(f"{two_dockerds[1]}\n")
    assert run(pidfile).split() == [str(two_dockerds[1])]


def test_a_stale_pid_file_falls_back_to_one_root_dockerd(tmp_path: Path, two_dockerds: list[int]) -> None:
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text("1\n")  # pid 1 is no dockerd
    out = run(pidfile).split()
    assert len(out) <= 1  # never two pids for one kill
    if out:
        assert Path(f"/proc/{out[0]}/comm").read_text().strip() == "dockerd"
