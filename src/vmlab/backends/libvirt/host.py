"""Where a guest's files, port and processes are: this host, or the libvirt host an ssh URI names.

libvirt's RPC reaches a remote daemon by itself, but a guest has three more things that live on the
libvirt host (see remote.py): its forwarded SSH port, the console log QEMU writes, and the boot files
its XML names. The backend asks a GuestHost for each instead of branching on "remote" at every use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from vmlab.backends.libvirt.remote import RemoteHost
from vmlab.backends.libvirt.target import ssh_target
from vmlab.errors import VmlabError
from vmlab.guest.console import ConsoleLog
from vmlab.guest.ssh import Dial, tcp_dial

log = logging.getLogger("vmlab")


class LocalHost:
    """libvirt runs here: QEMU reads and writes this host's files, the port is on this loopback."""

    sees_processes = True  # QEMU's pid, memory maps and KVM counters are readable here

    def __init__(self) -> None:
        self.label = "this host"
        self.via = ""  # appended to addresses shown to the user
        self.ssh_dial: Dial | None = None  # for the guest's SSH session; None: paramiko connects itself

    def dial(self, host: str, port: int, timeout: float) -> Any:
        """A stream to the guest's forwarded port (the readiness probes)."""
        return tcp_dial(host, port, timeout)

    def console(self, path: Path) -> ConsoleLog:
        return ConsoleLog(path)

    def prepare_files(self, resource: str, state: Path, files: list[Path]) -> None:
        """Nothing to do: QEMU reads the boot files where they are."""

    def remove_state(self, state: Path) -> None:
        """The instance's run files, then its run dir once empty (kept with VMLAB_KEEP_LOGS)."""
        if os.environ.get("VMLAB_KEEP_LOGS"):
            return
        shutil.rmtree(state, ignore_errors=True)
        with contextlib.suppress(OSError):
            state.parent.rmdir()  # the run dir, once its last instance is gone

    def close(self) -> None:
        """Nothing to release."""


class SshHost(LocalHost):
    """libvirt runs on another host reached over SSH: one paramiko connection carries the guest's
    port, its console log and the boot files (remote.py)."""

    sees_processes = False

    def __init__(self, remote: RemoteHost) -> None:
        super().__init__()
        self.remote = remote
        self.label = remote.target.label
        self.via = f" via {remote.target.label}"
        self.ssh_dial = self.dial

    def dial(self, host: str, port: int, timeout: float) -> Any:
        """Through the libvirt host: its 127.0.0.1 is where QEMU forwards the guest's port."""
        return self.remote.dial(host, port, timeout)

    def console(self, path: Path) -> ConsoleLog:
        return ConsoleLog(path, self._read)

    def _read(self, path: Path, offset: int) -> bytes:
        return self.remote.read_from(path, offset)

    def prepare_files(self, resource: str, state: Path, files: list[Path]) -> None:
        """The state dir (QEMU writes the console log there) and the boot files, uploaded if missing."""
        for path, why in self.remote.prepare_files(state, files).items():
            log.info("%s: uploaded %s to %s (%s)", resource, path, self.label, why)

    def remove_state(self, state: Path) -> None:
        """The local copy, then the remote's (console log, initrd); best effort like the local one."""
        if os.environ.get("VMLAB_KEEP_LOGS"):
            return
        super().remove_state(state)
        try:
            self.remote.remove_tree(state)
            self.remote.rmdir(state.parent)
        except VmlabError as e:
            log.warning("could not remove %s on %s: %s", state, self.label, e.one_line())

    def close(self) -> None:
        self.remote.close()


def host_for(uri: str) -> LocalHost:
    """SshHost for an ssh-transport URI (a bad keyfile= is the user's error, raised here before libvirt
    is asked), else LocalHost."""
    target = ssh_target(uri)
    return SshHost(RemoteHost(target)) if target is not None else LocalHost()
