"""Running the student's box.py, and Docker, with the probes; clean-up that does not trust the box.

The box is a child process in its own session. On a timeout or Ctrl-C it gets SIGINT first (its own
`finally` removes what it made), then SIGKILL; afterwards `sweep` removes any cgroup directory with the
run's name that the box left (killing its processes), so a faulty box never leaks into the next run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
NAME_PREFIX = "vmlab-osvirt-"


@dataclass
class BoxLimits:
    hostname: str | None = None
    memory_mib: int | None = None
    pids_max: int | None = None
    cpu_pct: int | None = None
    deny: list[str] = field(default_factory=list)
    timeout_s: float = 20.0


@dataclass
class BoxRun:
    code: int
    stdout: str
    stderr: str
    wall_ns: int
    timed_out: bool = False
    times: dict[str, int] = field(default_factory=dict)
    swept: list[str] = field(default_factory=list)  # cgroup directories the box left, removed by us

    def probes(self) -> dict[str, str]:
        """The `key=value` lines of stdout (the last value of a key wins)."""
        out: dict[str, str] = {}
        for line in self.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.isidentifier():
                out[key] = value
        return out


def unpack_rootfs(tar: Path, dest: Path) -> Path:
    """Unpack the tiny image's rootfs.tar (device nodes and links out of the tree are skipped)."""
    if (dest / "bin").is_dir():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar) as t:
        members = [m for m in t.getmembers() if not (m.ischr() or m.isblk() or m.isfifo())]
        if hasattr(tarfile, "tar_filter"):  # Python >= 3.11.4 (Debian's 3.11.2 has no filters)
            t.extractall(dest, members=members, filter="tar")
        else:  # vmlab's own image, built by `vmlab image build`: no member leaves the tree
            t.extractall(dest, members=members)
    return dest


def _names(name: str) -> list[Path]:
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT / name]
    return (
        [d / name for d in CGROUP_ROOT.iterdir() if d.is_dir() and not d.is_symlink()]
        if CGROUP_ROOT.is_dir()
        else []
    )


def leftovers(prefix: str = NAME_PREFIX) -> list[Path]:
    """cgroup directories whose name starts with `prefix`, in every hierarchy (what a test looks for)."""
    if not CGROUP_ROOT.is_dir():
        return []
    roots = [CGROUP_ROOT] + [d for d in CGROUP_ROOT.iterdir() if d.is_dir() and not d.is_symlink()]
    found: list[Path] = []
    for r in roots:
        try:
            found += [d for d in r.iterdir() if d.is_dir() and d.name.startswith(prefix)]
        except OSError:
            continue
    return found


def sweep(name: str) -> list[str]:
    """Remove the cgroups named `name` that a box left; return what had to be removed."""
    removed: list[str] = []
    for d in _names(name):
        if not d.is_dir():
            continue
        for _ in range(300):
            try:
                for pid in (d / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                d.rmdir()
                removed.append(str(d))
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)
    return removed


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT to the box's session (its finally runs), then SIGKILL after 5 s."""
    for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def box_argv(
    box: Path, rootfs: Path, limits: BoxLimits, name: str, cmd: list[str], times: Path | None = None
) -> list[str]:
    """The command line of one box run (box.py's options, as the skeleton and the model take them)."""
    argv = [sys.executable, str(box), "--rootfs", str(rootfs), "--timeout", str(limits.timeout_s)]
    argv += ["--name", name]
    for opt, val in (
        ("--hostname", limits.hostname),
        ("--memory-mib", limits.memory_mib),
        ("--pids-max", limits.pids_max),
        ("--cpu-pct", limits.cpu_pct),
    ):
        if val is not None:
            argv += [opt, str(val)]
    for call in limits.deny:
        argv += ["--deny-syscall", call]
    if times is not None:
        argv += ["--times", str(times)]
    return [*argv, "--", *cmd]


def run_box(
    box: Path, rootfs: Path, limits: BoxLimits, cmd: list[str], name: str, times: Path | None = None
) -> BoxRun:
    """One run of box.py; the box's own timeout plus 10 s is the hard limit here."""
    argv = box_argv(box, rootfs, limits, name, cmd, times)
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",  # a box may print any bytes: never a crash of the runner
        start_new_session=True,
        cwd=rootfs.parent,
    )
    timed_out = False
    swept: list[str] = []
    deadline = time.monotonic() + limits.timeout_s + 10
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=0.2)  # retrying loses no output (subprocess docs)
                break
            except subprocess.TimeoutExpired:
                if proc.poll() is not None and not swept:
                    # the box ended, yet its output is still open: a process it left in its cgroup
                    # holds it; end those now rather than wait for them
                    swept = sweep(name)
                if time.monotonic() > deadline:
                    timed_out = proc.poll() is None
                    _stop(proc)
                    swept += sweep(name)
                    out, err = _drain(proc)
                    break
    except BaseException:
        _stop(proc)
        raise
    finally:
        swept += [d for d in sweep(name) if d not in swept]
    wall = time.perf_counter_ns() - t0
    stamps: dict[str, int] = {}
    if times is not None and times.is_file():
        import json

        try:
            stamps = {k: int(v) for k, v in json.loads(times.read_text()).items()}
        except (ValueError, AttributeError, TypeError):
            stamps = {}
        times.unlink()
    return BoxRun(proc.returncode, out, err, wall, timed_out, stamps, swept)


def _drain(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """What is left of the box's output once it is stopped and its cgroups swept; a process it left
    outside them may still hold the pipes: after 10 s its output is given up, never waited for."""
    try:
        return proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        return "", "the box left a process holding its output: output not read"


def run_docker(
    image: str, cmd: list[str], name: str, runtime: str | None = None, timeout_s: float = 60.0
) -> BoxRun:
    """`docker run --rm --network none` of the tiny image (gVisor with runtime="runsc")."""
    argv = ["docker", "run", "--rm", "--network", "none", "--name", name]
    if runtime:
        argv += ["--runtime", runtime]
    argv += [image, *cmd]
    t0 = time.perf_counter_ns()
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=timeout_s, check=False
        )
    except BaseException:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False, timeout=60)
        raise
    return BoxRun(proc.returncode, proc.stdout, proc.stderr, time.perf_counter_ns() - t0)
