"""Count the system calls a command makes inside a running container (its "traps").

A container's process traps straight into the host kernel, so its traps are system calls. Two ways to
count them, chosen by `plan()`:

- from the host (root): the command is started with `docker exec` but held on `read` until strace has
  attached to it, so no call is missed and none of runc's own set-up calls are counted; the shell's
  one `read` is the only extra call.
- from inside (everyone else): a user in the docker group may not ptrace the container's root-owned
  processes from the host ("ptrace(PTRACE_SEIZE): Operation not permitted"), but strace in the
  container image (the tiny image ships it in rootfs.tar) may trace its own children with no extra
  capability: `docker exec C /usr/bin/strace -f -c /bin/sh -c CMD`. The count then also holds the
  shell's own start (an execve and a few calls of static busybox). Idle counting attaches to the
  container's init from inside, which hosts with Yama ptrace_scope >= 1 refuse without
  CAP_SYS_PTRACE: then that phase is reported as not measured, with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from vmlab.backends.capabilities import CapabilityMissing
from vmlab.backends.counters import IN_CONTAINER_STRACE, STRACE_PROVIDER, parse_strace_summary
from vmlab.backends.docker.errors import DOCKER_ERRORS, translate
from vmlab.errors import BackendError

INSIDE_PROVIDER = "strace -c -f inside the container (docker exec, the workload as its child)"
Where = Literal["host", "container"]


@dataclass(frozen=True)
class SyscallCount:
    counts: dict[str, int]
    rc: int
    duration_s: float


@dataclass(frozen=True)
class TracePlan:
    """Where strace runs, the provider name for the report, and why this way."""

    where: Where
    provider: str
    reason: str


class IdleNotMeasured(CapabilityMissing):
    """The idle phase could not be traced (attaching to the container's init was refused)."""


def _strace() -> str:
    path = shutil.which("strace")
    if path is None:
        raise CapabilityMissing("strace is not installed", hint="make setup (apt-get install strace)")
    return path


def plan(container_id: str, euid: int | None = None, client: Any = None) -> TracePlan:
    """Root traces from the host; anyone else from inside, when the image carries strace."""
    if (os.geteuid() if euid is None else euid) == 0:
        _strace()
        return TracePlan("host", STRACE_PROVIDER, "root may ptrace the container's processes")
    why = "not root: the container's processes are root-owned, so the host may not ptrace them"
    res = _docker_exec(
        container_id, ["/bin/sh", "-c", f"test -x {IN_CONTAINER_STRACE}"], timeout_s=30, client=client
    )
    if res[0] != 0:
        raise CapabilityMissing(
            f"counting system calls as a normal user needs strace inside the container image ({why})",
            hint="vmlab image build tiny (its container image carries strace), or run vmlab as root",
        )
    return TracePlan("container", INSIDE_PROVIDER, why + "; strace runs inside the container instead")


def count_exec_syscalls(
    container_id: str, command: str, timeout_s: float = 120.0, where: Where = "host", client: Any = None
) -> SyscallCount:
    """Run `sh -c command` in the container under `strace -c -f`; per-syscall call counts.
    `client` is the runtime's Docker client (None: one is opened for this call)."""
    if where == "container":
        return _count_exec_inside(container_id, command, timeout_s, client)
    return _count_exec_from_host(container_id, command, timeout_s, client)


def count_idle_syscalls(
    pid: int, seconds: float, where: Where = "host", container_id: str = "", client: Any = None
) -> dict[str, int]:
    """System calls a container's init makes while the container idles (strace -c for `seconds`)."""
    if where == "container":
        return _count_idle_inside(container_id, seconds, client)
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
    return _summary_or_zero(err)


def _summary_or_zero(err: str) -> dict[str, int]:
    if "% time" not in err:
        return {"total": 0}  # strace prints no table when nothing was called
    return parse_strace_summary(err)


# ---- from inside --------------------------------------------------------------------------------


@contextlib.contextmanager
def _client(client: Any, timeout_s: float) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    from vmlab.images.docker_image import docker_client

    own = docker_client(timeout=max(30, int(timeout_s) + 10))
    try:
        yield own
    finally:
        own.close()


def _docker_exec(
    container_id: str, argv: list[str], timeout_s: float, client: Any = None
) -> tuple[int, str, str]:
    """(rc, stdout, stderr) of a docker exec through the API; stderr apart (strace writes its table there)."""
    with _client(client, timeout_s) as c:
        api: Any = c.api
        try:
            exec_id = api.exec_create(container_id, argv, stdout=True, stderr=True)["Id"]
            out, err = api.exec_start(exec_id, demux=True)
            rc = api.exec_inspect(exec_id).get("ExitCode")
        except DOCKER_ERRORS as e:
            raise translate(e, f"docker exec in {container_id[:12]} failed") from e
    return (
        int(rc if rc is not None else -1),
        (out or b"").decode("utf-8", "replace"),
        (err or b"").decode("utf-8", "replace"),
    )


def _count_exec_inside(container_id: str, command: str, timeout_s: float, client: Any) -> SyscallCount:
    t0 = time.monotonic()
    # strace's exit code is the workload's; its table goes to stderr after the workload's own output
    rc, _out, err = _docker_exec(
        container_id,
        [
            "timeout",
            "-s",
            "INT",
            str(int(timeout_s)),
            IN_CONTAINER_STRACE,
            "-f",
            "-c",
            "-q",
            "/bin/sh",
            "-c",
            command,
        ],
        timeout_s,
        client,
    )
    duration = time.monotonic() - t0
    if "% time" not in err:
        tail = " | ".join(err.strip().splitlines()[-2:])
        raise BackendError(
            f"strace inside container {container_id[:12]} printed no summary (exit {rc}): {tail}"
        )
    return SyscallCount(parse_strace_summary(err), rc, duration)


def _count_idle_inside(container_id: str, seconds: float, client: Any) -> dict[str, int]:
    secs = max(1, round(seconds))
    rc, _out, err = _docker_exec(
        container_id,
        ["timeout", "-s", "INT", str(secs), IN_CONTAINER_STRACE, "-c", "-f", "-p", "1"],
        secs + 30,
        client,
    )
    if "Operation not permitted" in err or "attached" not in err:
        tail = " | ".join(err.strip().splitlines()[-1:])
        raise IdleNotMeasured(
            f"attaching to the container's init from inside was refused: {tail or f'exit {rc}'}",
            hint="run vmlab as root (the host traces the init), or allow ptrace: kernel.yama.ptrace_scope=0",
        )
    return _summary_or_zero(err)


# ---- from the host ------------------------------------------------------------------------------


def _count_exec_from_host(container_id: str, command: str, timeout_s: float, client: Any) -> SyscallCount:
    with _client(client, 30) as c:
        return _traced_exec_from_host(c.api, container_id, command, timeout_s)


def _traced_exec_from_host(api: Any, container_id: str, command: str, timeout_s: float) -> SyscallCount:
    strace = _strace()
    try:
        exec_id = api.exec_create(container_id, ["sh", "-c", f"read go; {command}"], stdin=True)["Id"]
        sock = api.exec_start(exec_id, socket=True)
    except DOCKER_ERRORS as e:
        raise translate(e, f"docker exec in {container_id[:12]} failed") from e
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
            err = (tracer.stderr.read() if tracer.stderr else "").strip().splitlines()[-1:] or [""]
            raise CapabilityMissing(
                f"strace could not attach to pid {pid}: {err[0][:160]}",
                hint="run vmlab as root, or as a normal user with strace in the container image",
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


class StraceCounter:
    """The trap counter of a runc container: its system calls, per phase, counted by strace."""

    headline = "total"

    def __init__(self, inst: Any) -> None:
        self.inst = inst
        self.client = inst.backend.client
        self.how = plan(inst.resource, client=self.client)
        self.provider = self.how.provider
        where = "from the host" if self.how.where == "host" else "inside"
        self.notes = [
            "a container has no VM exits: its workload traps straight into the host kernel",
            f"system calls counted {where}: {self.how.reason}",
        ]

    def snapshot(self) -> dict[str, int] | None:
        return None  # strace counts what it runs; the experiment sums the phases

    def phase(self, name: str, command: str | None, idle_s: float) -> dict[str, int]:
        if command is None:
            pid = self.inst.pid()
            if not pid:
                return {"total": 0}
            try:
                return count_idle_syscalls(pid, idle_s, self.how.where, self.inst.resource, self.client)
            except IdleNotMeasured as e:
                self.notes.append(f"{name} phase not measured: {e.message} (fix: {e.hint})")
                return {}
        result = count_exec_syscalls(self.inst.resource, command, where=self.how.where, client=self.client)
        if result.rc != 0:
            raise BackendError(f"{name} workload in {self.inst.name} exited {result.rc}")
        return result.counts

    def close(self) -> None:
        """Nothing to release: each phase's tracer ends with it."""
