"""Faults injected while a real guest boots under TCG: libvirtd killed (and back, or not), QEMU killed,
vmlab itself killed. Each run is `vmlab up` in its own process, as a student starts it; each test
asserts that the one error line names the fault with a fix that fits it, and that nothing is left: no
domain, no QEMU process, no cgroup of libvirt's, no state folder (keys, console log, initrd) under
VMLAB_HOME.

Killing libvirtd needs root (it is the system daemon); the test restarts it the way set-up does
(`libvirtd -d`), and a fixture makes sure it runs again whatever the test did. The Docker side of the
same story (a busy dockerd, a dockerd gone) is in tests/integration/compare/test_faults.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import probe_command

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]

URI = "qemu:///system"
VMLAB = str(Path(sys.executable).with_name("vmlab"))


def _libvirtd_answers() -> bool:
    return probe_command(["virsh", "-c", URI, "version"]) is None


def _start_libvirtd() -> None:
    """As scripts/setup-host.sh does, idempotently; waits until virsh answers."""
    if subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, check=False).returncode != 0:
        subprocess.run(["libvirtd", "-d"], check=True)
    deadline = time.monotonic() + 30
    while not _libvirtd_answers():
        assert time.monotonic() < deadline, "libvirtd did not come back within 30 s"
        time.sleep(0.2)


@pytest.fixture
def system_libvirtd(libvirt_available: str) -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("killing and restarting the system libvirtd needs root")
    if libvirt_available != URI:
        pytest.skip(f"these faults are injected into {URI}; this run uses {libvirt_available}")
    try:
        yield
    finally:
        _start_libvirtd()


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "VMLAB_HOME": str(home), "VMLAB_LIBVIRT_URI": URI}


def _down_all(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VMLAB, "down", "--all"], env=_env(home), capture_output=True, text=True, timeout=120, check=False
    )


def _up(name: str, home: Path, timeout: int = 120) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [VMLAB, "up", name, "--kind", "vm", "--timeout", str(timeout)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_line(proc: subprocess.Popen[str], text: str, seen: list[str], timeout: float = 60) -> None:
    """Read vmlab's stderr until a line holds `text` (kept in `seen`): the stage to inject at."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"vmlab ended before {text!r}: {''.join(seen)}")
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"no {text!r} within {timeout} s")


BOOTING = "waiting for readiness"  # QEMU runs (stage process_running): the guest is booting


def _domain_of(name: str, timeout: float = 60) -> str:
    """The libvirt name of the guest `name` once QEMU runs (vmlab names it vmlab-<run id>-<name>)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["virsh", "-c", URI, "list", "--name"], capture_output=True, text=True, check=False
        )
        found = [d for d in out.stdout.split() if d.startswith("vmlab-") and d.endswith(f"-{name}")]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no running domain for {name} within {timeout} s")


def _qemu_pids(domain: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"guest={domain},"], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def _leftovers(domain: str, home: Path) -> list[str]:
    """What is left of the guest: its domain (running or defined), its QEMU, files naming its run."""
    left: list[str] = []
    if _libvirtd_answers():
        out = subprocess.run(["virsh", "-c", URI, "list", "--all", "--name"], capture_output=True, text=True)
        left += [f"domain {d}" for d in out.stdout.split() if d == domain]
    left += [f"qemu pid {p}" for p in _qemu_pids(domain)]
    run_id = domain.removeprefix("vmlab-").rsplit("-", 1)[0]
    left += [f"file {p}" for p in home.rglob(f"*{run_id}*")]
    cgroups = Path("/sys/fs/cgroup")  # libvirt's per-domain cgroups, in every hierarchy
    left += [f"cgroup {p}" for p in cgroups.glob(f"*/machine/*{domain}*")]
    left += [f"cgroup {p}" for p in cgroups.glob(f"machine/*{domain}*")]
    return left


def _finish(proc: subprocess.Popen[str], seen: list[str], timeout: float = 180) -> tuple[int, str]:
    _out, err = proc.communicate(timeout=timeout)
    return proc.returncode, "".join(seen) + err


def _error_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_libvirtd_killed_while_the_guest_boots_and_back_soon_leaves_nothing(
    system_libvirtd: None, test_home: Path, tiny_image: Any
) -> None:
    proc, seen = _up("lvkill", test_home), []
    _wait_line(proc, BOOTING, seen)
    domain = _domain_of("lvkill")
    subprocess.run(["pkill", "-KILL", "-x", "libvirtd"], check=True)
    time.sleep(3)
    _start_libvirtd()  # back within vmlab's wait: vmlab removes the guest through it
    rc, err = _finish(proc, seen)
    line = _error_line(err)
    assert rc == 4
    assert "libvirtd stopped answering while the guest booted (QEMU pid" in line and "still runs" in line
    assert "fix: start libvirtd again" in line and "--timeout" not in line
    assert _leftovers(domain, test_home) == []


def test_libvirtd_that_stays_away_gets_qemu_ended_and_the_command_for_the_rest(
    system_libvirtd: None, test_home: Path, tiny_image: Any
) -> None:
    proc, seen = _up("lvgone", test_home), []
    _wait_line(proc, BOOTING, seen)
    domain = _domain_of("lvgone")
    subprocess.run(["pkill", "-KILL", "-x", "libvirtd"], check=True)
    rc, err = _finish(proc, seen)  # vmlab waits 20 s (recovery.DAEMON_WAIT_S) in vain, then acts
    assert rc == 4 and "libvirtd stopped answering" in _error_line(err)
    assert _qemu_pids(domain) == []  # vmlab ended the QEMU it could identify
    said = " ".join(err.split())  # the warning is wrapped at the terminal's width
    command = re.search(r"`(vmlab down --all)`", said)
    assert command and f"virsh -c {URI} undefine {domain}" in said
    _start_libvirtd()
    assert command.group(1) == "vmlab down --all"
    done = _down_all(test_home)
    assert done.returncode == 0, done.stderr
    assert _leftovers(domain, test_home) == []


def test_qemu_killed_while_the_guest_boots_is_named_and_leaves_nothing(
    libvirt_available: str, test_home: Path, tiny_image: Any
) -> None:
    if libvirt_available != URI:
        pytest.skip(f"reads QEMU's log under /var/log/libvirt; this run uses {libvirt_available}")
    proc, seen = _up("qkill", test_home), []
    _wait_line(proc, BOOTING, seen)
    domain = _domain_of("qkill")
    (pid,) = _qemu_pids(domain)
    os.kill(pid, signal.SIGKILL)
    rc, err = _finish(proc, seen)
    line = _error_line(err)
    assert rc == 4
    assert "QEMU exited before the guest was ready (libvirt: crashed)" in line
    assert "QEMU was ended from outside or crashed (a longer --timeout will not help)" in line
    assert "slow host" not in line
    assert _leftovers(domain, test_home) == []


def test_vmlab_killed_mid_boot_leaves_what_down_all_finds(
    libvirt_available: str, test_home: Path, tiny_image: Any
) -> None:
    proc, seen = _up("vkill", test_home), []
    _wait_line(proc, BOOTING, seen)
    domain = _domain_of("vkill")
    proc.send_signal(signal.SIGKILL)  # no cleanup can run: the state lives on the domain itself
    proc.communicate(timeout=30)
    assert _qemu_pids(domain), "the guest should outlive a killed vmlab"
    done = _down_all(test_home)
    assert done.returncode == 0, done.stderr
    assert f"destroyed vm vkill ({domain})" in done.stdout + done.stderr
    assert _leftovers(domain, test_home) == []


@pytest.fixture
def system_virtlogd(system_libvirtd: None) -> Iterator[None]:
    try:
        yield
    finally:
        if subprocess.run(["pgrep", "-x", "virtlogd"], capture_output=True, check=False).returncode != 0:
            subprocess.run(["virtlogd", "-d"], check=True)


def test_virtlogd_killed_while_the_guest_boots_is_named_not_blamed_on_a_slow_host(
    system_virtlogd: None, test_home: Path, tiny_image: Any
) -> None:
    proc, seen = _up("vlkill", test_home, timeout=30), []
    _wait_line(proc, BOOTING, seen)
    domain = _domain_of("vlkill")
    subprocess.run(["pkill", "-KILL", "-x", "virtlogd"], check=True)  # the console log stops here
    rc, err = _finish(proc, seen)
    line = _error_line(err)
    assert rc == 4
    assert "the guest's serial console fell silent: virtlogd, which writes it, is not running" in line
    assert "fix: start virtlogd again" in line and "slow host" not in line
    assert _leftovers(domain, test_home) == []
