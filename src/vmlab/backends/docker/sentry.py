"""gVisor's Sentry as a trap counter: the system calls it handled, read from its own strace log
(`runsc debug --strace=all` makes it write one entry line per call to its `*.boot.txt`), and those that
reached the host kernel (strace -c -f on the Sentry); and the logs' housekeeping."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from vmlab.backends.base import ExecResult
from vmlab.backends.capabilities import CapabilityMissing
from vmlab.errors import BackendError


class Sandbox(Protocol):
    """What the counter needs of a running sandbox (RunscInstance)."""

    name: str
    resource: str
    container: Any

    def boot_log(self) -> Path: ...
    def runsc_root(self, log: Path) -> str: ...
    def pid(self) -> int | None: ...
    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult: ...


PROVIDER = "gVisor Sentry strace (runsc debug --strace=all, the boot log's entry lines)"
HOST_PROVIDER = "strace -c -f on the Sentry (system calls that reached the host kernel)"
# `I1126 15:36:36.907060   16893 strace.go:561] [   3:   3] sh E close(0xa host:[7])`: the same in
# runsc 2022-12 (Debian 12) and 2024-07 (Debian 13), captured in tests/unit/backends/data/; another
# release gets one line from host/versions.py's runsc_version_note (in `vmlab doctor`).
STRACE_LINE = re.compile(r"\] \[\s*\d+:\s*\d+\] \S+ E (\w+)\(")


def find_boot_log(folder: Path, container_id: str) -> Path | None:
    """The Sentry's log of one sandbox: the `*.boot.txt` whose Args line names the container."""
    try:
        logs = sorted(folder.glob("*.boot.txt"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    for path in logs:
        try:
            with path.open("rb") as f:
                head = f.read(8192)
        except OSError:
            continue
        if container_id.encode() in head:
            return path
    return None


def remove_orphan_empty_logs(folder: Path, since: float) -> list[Path]:
    """Empty Sentry logs opened since `since` (wall clock) that no process holds open: a Sentry killed
    as it started leaves one with not even its Args line, so its container cannot be named in it. A
    log some live Sentry still holds (another sandbox starting right now) is never touched. Only
    root can see other processes' open files, so only root removes them."""
    if os.geteuid() != 0:
        return []
    try:
        candidates = [
            p for p in folder.glob("*.boot.txt") if (st := p.stat()).st_size == 0 and st.st_mtime >= since
        ]
    except OSError:
        return []
    if not candidates:
        return []
    held: set[str] = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    held.add(os.readlink(fd))
    removed = []
    for p in candidates:
        if str(p) not in held and str(p.resolve()) not in held:
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


class SentryCounter:
    """System calls gVisor's kernel handled (from its own strace log), and how many reached the host."""

    headline = "total"
    provider = PROVIDER

    def __init__(self, inst: Sandbox) -> None:
        if os.geteuid() != 0:
            raise CapabilityMissing(
                "counting the sandbox's system calls needs root: `runsc debug` talks to the sandbox's "
                "control socket and its log is root's",
                hint="run the traps experiment as root",
            )
        self.inst = inst
        self.log = inst.boot_log()
        self.root = inst.runsc_root(self.log)
        self.sentry = inst.pid()
        self.notes = [
            "a sandbox's system calls are answered by gVisor's Sentry (a kernel in user space); "
            "`total` counts those it handled, `host_total` the host system calls the Sentry made meanwhile",
        ]
        self._strace("all")

    def _strace(self, what: str) -> None:
        argv = ["runsc", "--root", self.root, "debug", f"--strace={what}", self.inst.container.id]
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BackendError(f"runsc debug on {self.inst.resource} failed: {e}") from e
        if p.returncode != 0:
            tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or [""]
            raise BackendError(
                f"runsc debug --strace={what} on {self.inst.resource} exited {p.returncode}: {tail[0][:160]}",
                hint="is the sandbox's Sentry still running? (vmlab ls)",
            )

    def snapshot(self) -> dict[str, int] | None:
        return count_sentry_log(self.log.read_text("utf-8", "replace"))

    def phase(self, name: str, command: str | None, idle_s: float) -> dict[str, int]:
        before = self.snapshot() or {}
        host = _HostTracer(self.sentry) if self.sentry else None
        try:
            if command is None:
                time.sleep(idle_s)
            else:
                res = self.inst.exec(command, timeout=300)
                if res.rc != 0:
                    raise BackendError(f"{name} workload in {self.inst.name} exited {res.rc}")
        finally:
            host_total = host.stop() if host is not None else None
        time.sleep(0.05)  # the Sentry writes its log lines asynchronously
        after = self.snapshot() or {}
        counts = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
        counts.setdefault("total", 0)
        if host_total is not None:
            counts["host_total"] = host_total
        return counts

    def close(self) -> None:
        with contextlib.suppress(BackendError):
            self._strace("off")


def count_sentry_log(text: str) -> dict[str, int]:
    """Per system call, the entry lines of the Sentry's strace (one per call it handled), and `total`."""
    counts: dict[str, int] = {}
    for m in STRACE_LINE.finditer(text):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    counts["total"] = sum(counts.values())
    return counts


class _HostTracer:
    """strace -c -f attached to the Sentry for one phase: the system calls that reached the host."""

    def __init__(self, pid: int) -> None:
        import shutil

        self.proc: subprocess.Popen[str] | None = None
        strace = shutil.which("strace")
        if strace is None:
            return
        self.proc = subprocess.Popen(
            [strace, "-c", "-f", "-q", "-p", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.3)  # attaching to every Sentry thread takes a moment

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        from vmlab.backends.counters import CounterParseError, parse_strace_summary

        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        try:
            return parse_strace_summary(err).get("total")
        except CounterParseError:
            return None
