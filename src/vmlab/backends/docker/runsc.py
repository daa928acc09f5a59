"""The `docker-runsc` runtime: a gVisor sandbox, the same container image under Docker's `runsc` runtime.

gVisor's Sentry is a kernel in user space: it intercepts the sandbox's system calls (with the ptrace
platform, through a stub process per address space) and answers them itself, reaching the host only
for what it cannot answer alone (files through the Gofer, time, memory). So it sits between a
container (the host kernel answers every call) and a VM (a guest kernel; the hypervisor sees exits).

Set-up (scripts/setup-host.sh) registers Debian's `runsc` in /etc/docker/daemon.json with
`--platform=ptrace --network=none --debug-log=/var/log/runsc/ --debug-command=boot`: ptrace because
`--platform=kvm` printed nothing on hosts without VT-x, no network because gVisor refuses to run with
network in the root network namespace, and a Sentry log per sandbox (`*.boot.txt`) because that is
where `runsc debug --strace=all` makes the Sentry write one entry (E) and one exit (X) line per system
call it handles: the sandbox's own trap count. What runsc costs against runc here is in
docs/runtimes.md ("The gVisor sandbox").
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vmlab.backends.base import ExecResult, Kind, Record
from vmlab.backends.capabilities import CapabilityMissing, TrapCounter
from vmlab.backends.context import RunContext
from vmlab.backends.docker.backend import DockerBackend, DockerInstance
from vmlab.backends.docker.errors import DOCKER_ERRORS, RESTART_DOCKERD
from vmlab.backends.docker.probe import OCI_RUNTIME, runsc_registration
from vmlab.backends.docker.sentry import SentryCounter, find_boot_log, remove_orphan_empty_logs
from vmlab.errors import BackendError, ReadyTimeout

RUNTIME = "docker-runsc"
SENTRY_DIED_HINT = (
    "the Sentry was killed from outside or crashed (a longer --timeout will not help): run again; "
    "if it dies again, see the newest log in /var/log/runsc/"
)


def open_runtime(ctx: RunContext) -> RunscBackend:
    return RunscBackend()


class RunscBackend(DockerBackend):
    kind: Kind = "sandbox"
    runtime = RUNTIME
    oci_runtime = OCI_RUNTIME
    accel_label = "gvisor (ptrace)"

    def __init__(self, client: Any = None) -> None:
        super().__init__(client)
        self.debug_log = _flag(runsc_registration(self.client), "--debug-log")

    def _instance(self, container: Any, name: str, t0: float, ready_timeout_s: float) -> DockerInstance:
        return RunscInstance(self, container, name, t0, ready_timeout_s)

    def destroy_record(self, record: Record) -> None:
        super().destroy_record(record)
        self.remove_boot_log(str(record.extra.get("container_id", "")))

    def remove_boot_log(self, container_id: str) -> None:
        """The Sentry's log goes with its sandbox. Looked up once the sandbox is gone: a sandbox
        interrupted while it starts (Ctrl-C during `up`) may write its log after removal was asked."""
        if not (self.debug_log and container_id):
            return
        log = find_boot_log(Path(self.debug_log), container_id)
        if log is not None:
            with contextlib.suppress(OSError):
                log.unlink()


def _flag(args: list[str], name: str) -> str | None:
    for a in args:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


class RunscInstance(DockerInstance):
    kind: Kind = "sandbox"
    runtime = RUNTIME
    accel = "gvisor"
    accel_reason = "a user-space kernel (gVisor's Sentry) answers the sandbox's system calls"
    memory_method = (
        "the runtime's processes: the shim, gVisor's Sentry (its kernel, holding the sandbox's memory "
        "and page cache) and Gofer (its file server); cgroup usage is everything charged to the sandbox"
    )
    backend: RunscBackend
    _sentry_pid: int | None = None

    def _runtime_processes(self, pid: int) -> list[tuple[str, Any]]:
        """Docker's pid of a runsc container is the Sentry; the Gofer is its sibling under the shim."""
        import psutil

        sentry = psutil.Process(pid)
        procs: list[tuple[str, Any]] = [("sentry", sentry)]
        shim = sentry.parent()
        if shim is not None:
            procs.insert(0, ("shim", shim))
            for child in shim.children():
                if child.pid != pid and "runsc-gofer" in " ".join(child.cmdline()[:1]):
                    procs.append(("gofer", child))
        return procs

    # --- a Sentry that died (killed from outside or crashed) is named as such ------------------------

    def start(self) -> None:
        try:
            super().start()
        except BackendError as e:
            raise self._named(e, starting=True) from e

    def wait_ready(self, timeout_s: float | None = None) -> None:
        try:
            super().wait_ready(timeout_s)
            with contextlib.suppress(BackendError):  # after the timed ladder, so it costs it nothing
                self._sentry_pid = self.pid()  # remembered: a dead Sentry's pid is named in the error
        except ReadyTimeout:
            raise
        except BackendError as e:
            if e.hint is None and "gVisor's Sentry" in e.message:  # the ladder's abort named it
                raise BackendError(e.message, hint=SENTRY_DIED_HINT) from e
            raise

    def _exited(self) -> str | None:
        why = super()._exited()
        if why is None:
            return None
        return self._sentry_death() or why

    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult:
        try:
            return super().exec(cmd, timeout)
        except BackendError as e:
            raise self._named(e) from e

    def _named(self, e: BackendError, starting: bool = False) -> BackendError:
        """`e`, or the Sentry's death or start-up failure where that is what happened."""
        died = self._sentry_death()
        if died:
            return BackendError(f"{died} ({e.message})", hint=SENTRY_DIED_HINT)
        fatal = self._boot_fatal()
        if fatal is not None and "/var/lib/docker/tmp" in fatal and "permission denied" in fatal:
            return BackendError(
                f"{self.name}: gVisor could not start the sandbox: its Sentry cannot set up its chroot "
                "in /var/lib/docker/tmp (permission denied)",
                hint=f"{RESTART_DOCKERD}: the containerd dockerd restarted after a crash hands runsc "
                "dockerd's TMPDIR, which the sandbox cannot open",
            )
        if fatal is not None:
            return BackendError(
                f"{self.name}: gVisor could not start the sandbox: {fatal[:200]}", hint=e.hint
            )
        if starting and "OCI runtime" in e.message:
            # runsc failed and the Sentry left no FATAL line of its own: it was killed as it started
            # (seen: "cannot create sandbox: ... waiting for sandbox to start: EOF", or the OCI hook
            # Docker runs inside the new sandbox failing with "exit status 1")
            tail = e.message.rsplit("creating container: ", 1)[-1]
            return BackendError(
                f"{self.name}: gVisor's Sentry (the sandbox's kernel) died while the sandbox started "
                f"(runsc: {tail[:160]})",
                hint=SENTRY_DIED_HINT,
            )
        return e

    def _sentry_death(self) -> str | None:
        """How the sandbox ended, from Docker's `die` event (kept after AutoRemove took the container):
        a sandbox's main process, as Docker sees it, is gVisor's Sentry."""
        try:
            events = list(
                self.api.events(
                    since=self._since,
                    until=time.time(),
                    filters={"container": self.container.id, "event": "die"},
                    decode=True,
                )
            )
        except DOCKER_ERRORS:
            return None
        if not events:
            return None
        code = int(((events[0].get("Actor") or {}).get("Attributes") or {}).get("exitCode") or 0)
        pid = f", pid {self._sentry_pid}" if self._sentry_pid else ""
        if code > 128 and code - 128 in {s.value for s in signal.Signals}:
            how = f"killed by {signal.Signals(code - 128).name}"
        else:
            how = f"exit status {code}"
        return f"{self.name}: gVisor's Sentry (the sandbox's kernel{pid}) died ({how})"

    def _boot_fatal(self) -> str | None:
        """The Sentry's own last word (`FATAL ERROR: ...`) from its boot log, if it wrote one."""
        if not self.backend.debug_log:
            return None
        log = find_boot_log(Path(self.backend.debug_log), self.container.id)
        if log is None:
            return None
        with contextlib.suppress(OSError):
            for line in reversed(log.read_text("utf-8", "replace").splitlines()[-50:]):
                if "FATAL ERROR:" in line:
                    return line.split("FATAL ERROR:", 1)[1].strip()
        return None

    def boot_log(self) -> Path:
        """The Sentry's log of this sandbox: the `*.boot.txt` whose Args line names the container."""
        if not self.backend.debug_log:
            raise CapabilityMissing(
                "runsc is registered without --debug-log: the Sentry keeps no log to count from",
                hint="make setup (registers runsc with --debug-log=/var/log/runsc/)",
            )
        folder = Path(self.backend.debug_log)
        found = find_boot_log(folder, self.container.id)
        if found is not None:
            return found
        raise CapabilityMissing(
            f"no Sentry log of {self.resource} in {folder}", hint="make setup (re-registers runsc)"
        )

    def runsc_root(self, log: Path) -> str:
        with log.open("rb") as f:
            head = f.read(8192).decode("utf-8", "replace")
        m = re.search(r"--root=(\S+)", head)
        return m.group(1) if m else "/var/run/docker/runtime-runc/moby"

    def trap_counter(self) -> TrapCounter:
        return SentryCounter(self)

    def _destroy(self) -> None:
        super()._destroy()
        self.backend.remove_boot_log(self.container.id)
        if self.backend.debug_log:
            remove_orphan_empty_logs(Path(self.backend.debug_log), self._since)
