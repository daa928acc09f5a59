"""Nothing of the model box is left after success, failure, a timeout and Ctrl-C.

"Nothing" is checked three ways, each independent of the box's own bookkeeping: no cgroup directory
with the run's name in any hierarchy (/sys/fs/cgroup/*/NAME), no mount of the root file system in the
host's mount table, and no process whose root directory (/proc/PID/root: device and inode) is the box's root.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.integration.osvirt.conftest import SOLUTION

from vmlab.osvirt.box import BoxLimits, leftovers, run_box, sweep

pytestmark = pytest.mark.slow


def _procs_in(rootfs: Path) -> list[int]:
    """Processes whose root directory is the box's (same device and inode: pivot_root keeps both)."""
    want = (rootfs.stat().st_dev, rootfs.stat().st_ino)
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                st = os.stat(d / "root")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == want:
                found.append(int(d.name))
    return found


def _mounted(rootfs: Path) -> bool:
    return str(rootfs) in Path("/proc/self/mountinfo").read_text()


def _assert_clean(rootfs: Path, name: str) -> None:
    assert [p for p in leftovers() if p.name == name] == []
    assert not _mounted(rootfs)
    assert _procs_in(rootfs) == []


LIMITS = BoxLimits("clean", 64, 16, 50, ["mkdir"], 5.0)


def test_success_and_failure_leave_nothing(rootfs: Path) -> None:
    ok = run_box(SOLUTION, rootfs, LIMITS, ["/bin/sh", "-c", "echo pid=$$"], "vmlab-osvirt-t-ok")
    assert ok.code == 0 and ok.probes()["pid"] == "1"
    _assert_clean(rootfs, "vmlab-osvirt-t-ok")
    bad = run_box(SOLUTION, rootfs, LIMITS, ["/bin/sh", "-c", "exit 3"], "vmlab-osvirt-t-bad")
    assert bad.code == 3
    _assert_clean(rootfs, "vmlab-osvirt-t-bad")
    # the box itself failing (a command that does not exist in the root): 125, still nothing left
    # a cgroup of that name exists already (another box): refused with one line, and left alone
    taken = Path("/sys/fs/cgroup/pids/vmlab-osvirt-t-taken")
    taken.mkdir()
    try:
        argv = [sys.executable, str(SOLUTION), "--rootfs", str(rootfs), "--name", taken.name, "/bin/true"]
        clash = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert clash.returncode == 125 and "File exists" in clash.stderr
        assert taken.is_dir()
    finally:
        taken.rmdir()
    _assert_clean(rootfs, "vmlab-osvirt-t-taken")
    missing = run_box(SOLUTION, rootfs, LIMITS, ["/no/such/program"], "vmlab-osvirt-t-missing")
    assert missing.code == 125 and "box:" in missing.stderr
    _assert_clean(rootfs, "vmlab-osvirt-t-missing")


def test_timeout_leaves_nothing(rootfs: Path) -> None:
    lim = BoxLimits("clean", 64, 16, 50, [], 1.0)
    run = run_box(SOLUTION, rootfs, lim, ["/bin/sh", "-c", "sleep 30; sleep 30"], "vmlab-osvirt-t-slow")
    assert run.code == 124 and "timeout" in run.stderr
    _assert_clean(rootfs, "vmlab-osvirt-t-slow")


def test_ctrl_c_leaves_nothing(rootfs: Path) -> None:
    name = "vmlab-osvirt-t-int"
    argv = [sys.executable, str(SOLUTION), "--rootfs", str(rootfs), "--name", name, "--pids-max", "16"]
    argv += ["--memory-mib", "64", "--", "/bin/sh", "-c", "sleep 30; sleep 30"]
    proc = subprocess.Popen(argv, start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while len(_procs_in(rootfs)) < 2 and time.monotonic() < deadline:  # the shell and a sleep
            time.sleep(0.05)
        assert [p for p in leftovers() if p.name == name], "the box made no cgroup"
        assert len(_procs_in(rootfs)) >= 2, proc.poll()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        assert proc.wait(10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            sweep(name)
    _assert_clean(rootfs, name)


def test_a_box_that_leaks_its_cgroup_is_swept_and_counted(rootfs: Path, tmp_path: Path) -> None:
    """A box that makes its cgroup, puts a process in it and exits without cleaning up: the runner
    kills the process, removes the directory and reports one leftover (what `no-leftovers` grades)."""
    leaky = tmp_path / "leaky.py"
    leaky.write_text(
        "import argparse, os, pathlib, subprocess\n"
        "p = argparse.ArgumentParser(); p.add_argument('--name'); p.add_argument('--rootfs')\n"
        "p.add_argument('--timeout'); p.add_argument('cmd', nargs='+')\n"
        "a = p.parse_args()\n"
        "d = pathlib.Path('/sys/fs/cgroup/pids') / a.name\n"
        "d.mkdir()\n"
        "s = subprocess.Popen(['sleep', '60'], start_new_session=True)\n"
        "(d / 'cgroup.procs').write_text(str(s.pid))\n"
    )
    name = "vmlab-osvirt-t-leak"
    run = run_box(leaky, rootfs, BoxLimits(timeout_s=5.0), ["/bin/true"], name)
    assert run.swept == [f"/sys/fs/cgroup/pids/{name}"]
    assert [p for p in leftovers() if p.name == name] == []
