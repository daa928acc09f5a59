"""Count the system calls a command makes inside a running container (its "traps").

A container's process traps straight into the host kernel, so its traps are system calls. The command
is started with `docker exec` but held on `read` until strace has attached to it: no call is missed
and none of runc's own set-up calls are counted. The shell's one `read` is the only extra call.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

from vmlab.errors import BackendError, NotAvailable
from vmlab.experiments.counters import parse_strace_summary


@dataclass(frozen=True)
class SyscallCount:
    counts: dict[str, int]
    rc: int
    duration_s: float


def _strace() -> str:
    path = shutil.which("strace")
    if path is None:
        raise NotAvailable("strace is not installed", hint="make setup (apt-get install strace)")
    return path


def count_exec_syscalls(container_id: str, command: str, timeout_s: float = 120.0) -> SyscallCount:
    """Run `sh -c command` in the container under `strace -c -f`; per-syscall call counts."""
    import docker

    strace = _strace()
    client = docker.from_env(timeout=30)
    api = client.api
    exec_id = api.exec_create(container_id, ["sh", "-c", f"read go; {command}"], stdin=True)["Id"]
    sock = api.exec_start(exec_id, socket=True)
    raw = getattr(sock, "_sock", sock)
    tracer: subprocess.Popen[str] | None = None
    try:
        pid = _wait_exec_pid(api, exec_id)
        tracer = subprocess.Popen(
            [strace, "-c", "-f", "-q", "-p", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_attached(pid, tracer)
        t0 = time.monotonic()
        raw.sendall(b"go\n")
        try:
            _, err = tracer.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            tracer.send_signal(signal.SIGINT)
            _, err = tracer.communicate(timeout=10)
            raise BackendError(
                f"command in container {container_id[:12]} did not finish in {timeout_s:.0f}s"
            ) from None
        duration = time.monotonic() - t0
        rc = int(api.exec_inspect(exec_id).get("ExitCode") or 0)
        return SyscallCount(parse_strace_summary(err), rc, duration)
    finally:
        if tracer is not None and tracer.poll() is None:
            tracer.kill()
            tracer.wait()
        raw.close()
        client.close()


def count_idle_syscalls(pid: int, seconds: float) -> dict[str, int]:
    """System calls a container's init makes while the container idles (strace -c for `seconds`)."""
    strace = _strace()
    tracer = subprocess.Popen(
        [strace, "-c", "-f", "-q", "-p", str(pid)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(seconds)
        tracer.send_signal(signal.SIGINT)
        _, err = tracer.communicate(timeout=10)
    finally:
        if tracer.poll() is None:
            tracer.kill()
            tracer.wait()
    if "% time" not in err:
        return {"total": 0}  # strace prints no table when nothing was called
    return parse_strace_summary(err)


def _wait_exec_pid(api: object, exec_id: str, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while time.monotonic() < deadline:
        info = api.exec_inspect(exec_id)  # type: ignore[attr-defined]
        if info.get("Pid"):
            return int(info["Pid"])
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise BackendError(f"docker exec {exec_id[:12]} did not start within {timeout_s:.0f}s")


def _wait_attached(pid: int, tracer: subprocess.Popen[str], timeout_s: float = 10.0) -> None:
    """strace has attached once the target's TracerPid is strace's pid."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if tracer.poll() is not None:
            raise BackendError(
                f"strace could not attach to pid {pid}: {tracer.stderr.read() if tracer.stderr else ''}"
            )
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("TracerPid:") and int(line.split()[1]) == tracer.pid:
                        return
        except FileNotFoundError:
            raise BackendError(f"process {pid} vanished before strace attached") from None
        time.sleep(0.01)
    raise BackendError(f"strace did not attach to pid {pid} within {timeout_s:.0f}s")
