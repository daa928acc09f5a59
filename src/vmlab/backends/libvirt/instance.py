"""A guest under libvirt as vmlab's Instance: its readiness ladder (serial marker, SSH port, banner,
first command), exec over SSH, its shell command, and teardown that also works when libvirtd is gone.
What it measures is in measure.py."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from vmlab.backends.base import (
    ExecResult,
    InstanceBase,
    Kind,
)
from vmlab.backends.capabilities import (
    MemorySample,
    TrapCounter,
)
from vmlab.backends.libvirt import adapter as lv
from vmlab.backends.libvirt import measure, recovery
from vmlab.backends.libvirt.domain_xml import DomainModel
from vmlab.backends.libvirt.host import LocalHost
from vmlab.backends.ports import free_port, port_lock
from vmlab.backends.readiness import VM_LADDER, Attempt, climb
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, NotAvailable, ReadyTimeout
from vmlab.guest.ssh import SshSession, port_open, read_banner


class Owner(Protocol):
    """What a guest needs of the backend that made it (LibvirtBackend): its host, connection and URI."""

    host: LocalHost
    conn: Any
    uri: str


log = logging.getLogger("vmlab")
SSH_HOST = "127.0.0.1"
RUNTIME = "libvirt"


class _WithConsole(BackendError):
    """A guest failure that carries the tail of the serial console, for the user to read."""

    def __init__(
        self, message: str, *, hint: str | None = None, console_tail: list[str] | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.console_tail = console_tail or []


class GuestNotReady(_WithConsole, ReadyTimeout):
    """A readiness stage timed out."""


class GuestFailed(_WithConsole):
    """The guest stopped or panicked before it was ready."""


class LibvirtInstance(InstanceBase):
    kind: Kind = "vm"
    runtime = RUNTIME
    io_sink = "/dev/ttyS0"  # device I/O: every access traps to the VMM
    stages = VM_LADDER.names

    def __init__(
        self, backend: Owner, dom: Any, model: DomainModel, ready_timeout_s: float, t0: float
    ) -> None:
        super().__init__(model.metadata.get("name", model.name), model.name)
        self.ladder["create_called"] = t0
        self.backend = backend
        self.dom = dom
        self.model = model
        self.meta = model.metadata
        self.accel = self.meta.get("accel", "")
        self.accel_reason = self.meta.get("accel_reason", "")
        self.ready_timeout_s = ready_timeout_s
        self.host = backend.host
        self.console = self.host.console(model.serial_log)
        self.guest_uptime_s: float | None = None
        self.ssh_banner: str | None = None
        self._ssh: SshSession | None = None
        self._qemu_pid: int | None = None  # read once QEMU runs: cleanup needs it when libvirtd is gone

    @property
    def ssh_port(self) -> int:
        return int(self.meta.get("ssh_port", "0"))

    @property
    def address(self) -> str:
        return f"ssh://root@{SSH_HOST}:{self.ssh_port}" if self.ssh_port else ""

    @property
    def console_path(self) -> Path:
        return self.model.serial_log

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Pick the SSH port and start QEMU under the port lock (race-free across processes)."""
        what = f"starting {self.resource} failed"
        last: lv.PortTaken | None = None
        for _attempt in range(3):
            with port_lock():
                port = free_port(SSH_HOST)
                self.model.ssh_port = port
                self.meta["ssh_port"] = str(port)
                try:
                    self.dom = lv.define(self.backend.conn, self.model.to_xml(), what)
                    lv.start(self.dom, what)
                except lv.PortTaken as e:
                    last = e
                    continue  # the port was taken between choosing and binding it: another one
                except lv.DaemonGone:
                    raise  # libvirtd's fault, with its own fix
                except BackendError as e:
                    if "unexpectedly closed" in e.message:  # QEMU died while libvirt started it
                        ended = self._qemu_ended(e.message)
                        raise self._failed(ended, ended.hint) from e
                    raise self._failed(e, "see the console tail; `vmlab doctor` checks libvirt") from e
            break
        else:
            raise BackendError(f"no free SSH port for {self.resource}: {last.message if last else '?'}")
        self._qemu_pid = self.pid()
        self.mark("process_running")

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Climb VM_LADDER (readiness.py): serial marker, SSH port, banner, first command."""
        try:
            found = climb(
                self,
                VM_LADDER.ready,
                deadline=time.monotonic() + (timeout_s or self.ready_timeout_s),
                abort=self._abort_reason,
                prefix=self.name,
                stamp=self.mark,
            )
        except ReadyTimeout as e:
            if self.host.sees_processes and not recovery.virtlogd_runs():
                raise lv.DaemonGone(
                    f"{self.name}: the guest's serial console fell silent: virtlogd, which writes it, "
                    "is not running",
                    hint="start virtlogd again (make setup, or virtlogd -d as root), then run again",
                ) from e
            raise GuestNotReady(e.message, hint=e.hint, console_tail=self._tail_for_error()) from e
        except lv.DaemonGone:
            raise  # the daemon's fault: the guest's console has nothing to say about it
        except BackendError as e:
            raise self._failed(e, e.hint) from e
        self.guest_uptime_s = found["serial_marker"]
        self.ssh_banner = found["ssh_banner"]

    # --- the ladder's probes (readiness.GuestSteps) -----------------------------------------------

    def wait_serial_marker(self, attempt: Attempt) -> float:
        """Woken within a millisecond of QEMU's write (inotify, see guest/watch.py)."""
        return self.console.wait_marker(
            self.meta.get("ready_marker", "VMLAB_READY"),
            deadline=attempt.deadline,
            stage=attempt.stage,
            abort=attempt.abort,
            hint=attempt.hint,
        )

    def ssh_port_open(self) -> bool | None:
        return True if port_open(SSH_HOST, self.ssh_port, 1.0, self.host.dial) else None

    def ssh_banner_line(self) -> str | None:
        return read_banner(SSH_HOST, self.ssh_port, 2.0, self.host.dial)

    def first_command_ok(self) -> bool | None:
        try:
            res = self.exec(["true"], timeout=30.0)
        except BackendError as e:
            log.debug("first command not yet: %s", e)
            return None
        return True if res.ok else None

    def _abort_reason(self) -> str | None:
        """None while QEMU runs; otherwise raises what ended the wait, each with the fix that fits:
        libvirtd gone (QEMU may well still run), the guest kernel's panic, or QEMU itself ended."""
        try:
            active = lv.is_active(self.dom)
        except lv.DaemonGone as e:
            pid = self._qemu_pid
            runs = pid is not None and recovery.is_qemu_of(pid, self.resource)
            qemu = f"QEMU pid {pid} still runs" if runs else "QEMU's state is unknown"
            raise lv.DaemonGone(
                f"{self.name}: libvirtd stopped answering while the guest booted ({qemu})", hint=e.hint
            ) from e
        if active:
            return None
        panic = self.console.panic()
        if panic:
            raise BackendError(
                f"{self.name}: the guest kernel panicked: {panic}",
                hint="see the console tail above; the kernel, the initrd or --kernel-args are at fault",
            )
        why = lv.stop_reason(self.dom)
        raise self._qemu_ended(
            f"{self.name}: QEMU exited before the guest was ready" + (f" (libvirt: {why})" if why else "")
        )

    def _qemu_ended(self, message: str) -> BackendError:
        """QEMU is gone, not slow: its own last words, and a fix that does not blame the timeout."""
        last = recovery.qemu_last_words(self.resource)
        log_file = recovery.qemu_log(self.resource)
        return BackendError(
            message + (f"; QEMU's log: {last}" if last else ""),
            hint="QEMU was ended from outside or crashed (a longer --timeout will not help)"
            + (f"; see {log_file}" if log_file else ""),
        )

    def _failed(self, e: BackendError, hint: str | None) -> GuestFailed:
        return GuestFailed(e.message, hint=hint, console_tail=self._tail_for_error())

    def _tail_for_error(self) -> list[str]:
        """The last lines, led by the panic line when a stack dump pushed it out of the tail."""
        tail = self.console_tail()
        panic = self.console.panic()
        if panic and not any(panic in line for line in tail):
            tail = [panic, *tail]
        return tail

    # --- use ------------------------------------------------------------------------------------

    def session(self) -> SshSession:
        if self._ssh is None:
            self._ssh = SshSession(
                SSH_HOST,
                self.ssh_port,
                self.meta["host_key"],
                Path(self.meta["client_key"]),
                dial=self.host.ssh_dial,
            )
        return self._ssh

    def shell_argv(self) -> list[str]:
        """OpenSSH to the 127.0.0.1 forward with the pinned host key and the instance's client key; for
        an ssh-transport URI it hops through the libvirt host, where that forward listens."""
        from vmlab.backends.libvirt.target import openssh_proxy_command, ssh_target

        if shutil.which("ssh") is None:
            raise NotAvailable("the ssh client is not installed", hint="apt-get install openssh-client")
        port = self.ssh_port
        if not port or "client_key" not in self.meta or "host_key" not in self.meta:
            raise NotAvailable(
                f"vm {self.name} has no SSH forward recorded (it never started)",
                hint=f"vmlab down {self.name}; vmlab up {self.name}",
            )
        argv = [
            "ssh",
            "-p",
            str(port),
            "-i",
            self.meta["client_key"],
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            f"KnownHostsCommand=/bin/echo [{SSH_HOST}]:{port} {self.meta['host_key']}",
        ]
        target = ssh_target(self.backend.uri)
        if target is not None:  # the forward listens on the libvirt host's loopback: hop through it
            argv += ["-o", f"ProxyCommand={openssh_proxy_command(target)}"]
        argv.append(f"root@{SSH_HOST}")
        return argv

    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult:
        if not self.ssh_port:
            raise BackendError(f"{self.name} has no SSH port (not started)", hint=f"vmlab up {self.name}")
        return self.session().run(cmd, timeout=timeout)

    def pid(self) -> int | None:
        """The QEMU process (libvirt's pid file, else the process whose cmdline names the guest);
        None for a remote libvirt host, whose processes this host cannot see."""
        if not self.host.sees_processes:
            return None
        for base in (Path("/run/libvirt/qemu"), Path.home() / ".cache/libvirt/qemu/run"):
            f = base / f"{self.resource}.pid"
            try:
                return int(f.read_text().strip())
            except (OSError, ValueError):
                continue
        import psutil

        needle = f"guest={self.resource},"
        for p in psutil.process_iter(["cmdline"]):
            if any(needle in a for a in (p.info.get("cmdline") or [])):
                return int(p.pid)
        return None

    def guest_uptime(self) -> float | None:
        return self.guest_uptime_s

    def memory(self) -> MemorySample:
        """QEMU's memory maps (guest RAM is the mapping of the configured size), with libvirt's view."""
        return measure.memory(self)

    def trap_counter(self) -> TrapCounter:
        """KVM's exit statistics where the guest runs under KVM, else TCG's `info jit`."""
        return measure.trap_counter(self)

    def set_memory(self, mib: int) -> None:
        """Shrink or grow the running guest to `mib` through its balloon (LibvirtOptions.balloon)."""
        lv.set_memory(self.dom, mib * 1024, f"setting the balloon of {self.resource} to {mib} MiB")

    def balloon_stats(self) -> dict[str, int]:
        """libvirt's memoryStats (KiB): `actual` is the guest's size now; with the balloon's 1 s period
        also what the guest's driver reports (`unused`, `available`, `usable`)."""
        return lv.info(self.dom, f"memory statistics of {self.resource}")[1]

    def monitor(self, hmp_command: str) -> str:
        """An HMP command through libvirt (e.g. `info jit` under TCG)."""
        return lv.monitor(self.dom, hmp_command, f"monitor command {hmp_command!r} on {self.resource}")

    def console_tail(self, lines: int = 20) -> list[str]:
        return self.console.tail(lines)

    def close(self) -> None:
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None

    def _destroy(self) -> None:
        with deferred_interrupts():
            if self._ssh is not None:
                self._ssh.close()
            try:
                lv.destroy(self.dom)
            except lv.DaemonGone:
                left = recovery.remove_without_daemon(
                    self.backend.uri, self.resource, self._qemu_pid or self.pid(), self._remove_state
                )
                if left is not None:
                    raise lv.DaemonGone(f"{self.name}: {left}") from None
                return
            self._remove_state()

    def _remove_state(self) -> None:
        state = self.meta.get("state_dir")
        if state:
            self.host.remove_state(Path(state))
