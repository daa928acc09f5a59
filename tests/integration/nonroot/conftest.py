"""A throwaway normal user (groups kvm, libvirt, docker) who runs the CLI, as a student would.

CI runs as root, so the suite makes the student: `useradd`, then every command through `runuser -u`
with a student's environment (PATH without sbin, HOME theirs, VMLAB_HOME left to its default
~/.cache/vmlab). Neither the checkout nor the venv need be readable by that user (CI may clone into a
0700 folder; the venv's interpreter may be a pyenv Python under /root, which is 0700): the student gets
a copy of vmlab's source, labs and image recipes and of the venv's site-packages (without what only
development uses) in their home, and runs the system Python of the same X.Y on it: the same code and
libraries, no install.

Cleanup is guaranteed (finally, also after Ctrl-C): `vmlab down --all` as the student, then every
process still running as them (their libvirtd session daemon, a QEMU) killed by pid, their containers
removed by label, rootless podman's run folders in /tmp removed, lock files they created in /tmp handed
to root, and `userdel -r` (home, VMLAB_HOME, libvirt's and podman's per-user state).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
GROUPS = ("kvm", "libvirt", "docker")
STUDENT_PATH = "/usr/local/bin:/usr/bin:/bin"  # Debian's default for a normal user: no sbin


@dataclass
class Student:
    name: str
    uid: int
    home: Path
    python: str
    pythonpath: str

    @property
    def vmlab_home(self) -> Path:
        return self.home / ".cache" / "vmlab"

    def env(self) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": STUDENT_PATH,
            "LANG": "C.UTF-8",
            "PYTHONPATH": self.pythonpath,
            "PYTHONDONTWRITEBYTECODE": "1",  # the checkout is root's: no __pycache__ attempts
        }

    def run(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`argv` as the student (runuser: no password, no PAM session), in their home."""
        env_args = [f"{k}={v}" for k, v in self.env().items()]
        return subprocess.run(
            ["runuser", "-u", self.name, "--", "env", "-i", *env_args, *argv],
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def vmlab(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run([self.python, "-c", "from vmlab.cli.main import main; main()", *args], timeout)


def _need(what: str, reason: str) -> None:
    from tests.conftest import unavailable

    unavailable(what, reason)


def _tool(name: str) -> str:
    from vmlab.paths import system_tool

    path = system_tool(name)
    if path is None:
        _need(f"{name} (to create the throwaway student)", f"{name} is not installed")
        raise AssertionError  # unreachable: _need skips or fails
    return path


def _interpreters() -> list[str]:
    """The venv's Python, then the system's of the same X.Y (ABI-compatible with the venv's wheels)."""
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = [sys.executable, f"/usr/bin/python{ver}", f"/usr/local/bin/python{ver}"]
    return [p for p in dict.fromkeys(found) if Path(p).exists()]


# what only development needs (a browser driver, type checker, test runners): not copied for the student
DEV_ONLY = (
    "playwright",
    "mypy",
    "*__mypyc*",
    "pip",
    "hypothesis",
    "_pytest",
    "pytest",
    "ruff",
    "__pycache__",
)


def _copy_kit(dest: Path) -> str:
    """vmlab as the student will run it, in `dest`; returns the PYTHONPATH that reaches it."""
    for part in ("src", "labs", "vm-images"):  # labs/ and vm-images/ are found beside src/
        shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    site = dest / "site-packages"
    shutil.copytree(sysconfig.get_paths()["purelib"], site, ignore=shutil.ignore_patterns(*DEV_ONLY))
    return os.pathsep.join([str(dest / "src"), str(site)])


def _pick_python(student: Student) -> str:
    """The first interpreter the student can run that imports vmlab with libvirt and docker."""
    tried = []
    for py in _interpreters():
        student.python = py
        p = student.run([py, "-c", "import vmlab.cli.main, libvirt, docker"], timeout=60)
        if p.returncode == 0:
            return py
        tried.append(f"{py}: {(p.stderr.strip().splitlines() or ['?'])[-1][:120]}")
    _need("a Python the student can run with vmlab importable", "; ".join(tried) or "none found")
    raise AssertionError


@pytest.fixture(scope="session")
def student() -> Iterator[Student]:
    if os.geteuid() != 0:
        pytest.skip("creating a throwaway user needs root (make test runs as root under CI)")
    useradd, userdel = _tool("useradd"), _tool("userdel")
    _tool("runuser")
    name = f"vmlab-st-{secrets.token_hex(3)}"
    # short: libvirt's session daemon puts each guest's monitor socket under ~/.config/libvirt/qemu/
    # lib/domain-N-<name>/, and a UNIX socket path longer than 107 bytes makes the guest fail to start
    home = Path("/var/tmp") / name
    groups = [g for g in GROUPS if _group_exists(g)]
    created = False
    try:
        subprocess.run(
            [
                useradd,
                "--create-home",
                "--home-dir",
                str(home),
                "--shell",
                "/bin/sh",
                "--user-group",
                "--groups",
                ",".join(groups),
                name,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        created = True
        st = Student(name, pwd.getpwnam(name).pw_uid, home, "", _copy_kit(home / "kit"))
        st.python = _pick_python(st)
        yield st
    finally:
        if created:
            _remove_student(name, home, userdel)


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _remove_student(name: str, home: Path, userdel: str) -> None:
    """Everything the student may have left, whatever state the tests stopped in."""
    uid = pwd.getpwnam(name).pw_uid
    st = Student(
        name, uid, home, "", os.pathsep.join([str(home / "kit" / "src"), str(home / "kit" / "site-packages")])
    )
    for py in _interpreters():
        st.python = py
        with contextlib.suppress(subprocess.TimeoutExpired):
            if st.vmlab("down", "--all", "--json", timeout=120).returncode == 0:
                break
    _kill_processes_of(uid)
    _remove_containers_of(str(home / ".cache" / "vmlab"))
    for folder in (f"podman-run-{uid}", f"containers-user-{uid}"):  # rootless podman's run state
        shutil.rmtree(Path(tempfile.gettempdir()) / folder, ignore_errors=True)
    _hand_temp_locks_to_root(uid)
    subprocess.run([userdel, "--remove", name], capture_output=True, text=True, timeout=60, check=False)
    shutil.rmtree(home, ignore_errors=True)
    # the JVM (doctor asks `java -version`) keeps per-user performance data in /tmp/hsperfdata_<user>
    shutil.rmtree(Path("/tmp") / f"hsperfdata_{name}", ignore_errors=True)


def _kill_processes_of(uid: int) -> None:
    """The student's leftovers (their libvirtd session daemon, a QEMU): each by pid, TERM then KILL."""
    import psutil

    def mine() -> list[psutil.Process]:
        out = []
        for p in psutil.process_iter(["uids"]):
            uids = p.info.get("uids")
            if uids is not None and uids.real == uid:
                out.append(p)
        return out

    for sig in (signal.SIGTERM, signal.SIGKILL):
        procs = mine()
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)
        psutil.wait_procs(procs, timeout=10)


def _remove_containers_of(vmlab_home: str) -> None:
    docker = shutil.which("docker")
    if docker is None:
        return
    ids = subprocess.run(
        [docker, "ps", "-aq", "--filter", f"label=vmlab.home={vmlab_home}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout.split()
    if ids:
        subprocess.run([docker, "rm", "-f", *ids], capture_output=True, timeout=120, check=False)


def _hand_temp_locks_to_root(uid: int) -> None:
    """vmlab's machine-wide lock files are shared by every user: kept (removing one under a holder
    would split the lock), but no file may stay owned by a deleted uid."""
    tmp = Path(tempfile.gettempdir())
    for f in tmp.glob("vmlab-*.lock"):
        with contextlib.suppress(OSError):
            if f.stat().st_uid == uid:
                os.chown(f, 0, 0)


def parse_json(p: subprocess.CompletedProcess[str]) -> Any:
    assert p.returncode == 0, f"exit {p.returncode}: {p.stderr.strip()[-800:]}"
    return json.loads(p.stdout)


def wait_gone(check: Any, timeout_s: float = 30.0) -> bool:
    """Poll `check()` until it is falsy (cleanup is asynchronous in Docker and libvirt)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not check():
            return True
        time.sleep(0.2)
    return not check()
