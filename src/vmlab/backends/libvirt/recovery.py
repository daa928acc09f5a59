"""When a guest's QEMU or libvirtd dies under vmlab: name which one, and leave nothing behind.

QEMU is libvirtd's child, so two faults look alike from a connection's point of view and are not:
- libvirtd dies (killed, crashed, restarted): QEMU keeps running and the domain keeps its definition.
  `remove_without_daemon` waits (bounded) for libvirtd to answer again and removes the domain through
  it; otherwise it ends the QEMU process it can identify (the pid libvirt wrote, whose command line
  names the domain), removes the cgroups libvirtd would have removed, and returns the exact command
  that removes the definition once libvirtd is back.
- QEMU dies (killed from outside, crashed): libvirt says why (`stop_reason`) and QEMU's own log has
  its last words; a longer --timeout never helps, so the hint does not say so.
- virtlogd dies: QEMU's serial console reaches the log file through it (libvirt's default
  stdio_handler "logd"), so the console falls silent and the ready marker never comes. The guest
  still boots; the timeout is named for the daemon (`virtlogd_runs`), not for a slow host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

from vmlab.backends.libvirt import adapter as lv
from vmlab.errors import NotAvailable

log = logging.getLogger("vmlab")

DAEMON_WAIT_S = 20.0  # how long cleanup waits for libvirtd to come back before ending QEMU itself
QEMU_TERM_WAIT_S = 5.0  # after SIGTERM, before SIGKILL
QEMU_LOG_DIRS = (Path("/var/log/libvirt/qemu"), Path.home() / ".cache/libvirt/qemu/log")


def qemu_log(resource: str) -> Path | None:
    """QEMU's own log of this domain (system or session daemon), where it says how it ended."""
    for d in QEMU_LOG_DIRS:
        p = d / f"{resource}.log"
        if p.is_file():
            return p
    return None


def qemu_last_words(resource: str) -> str:
    """The last message QEMU itself wrote to its log ("qemu-system-x86_64: terminating on signal 15
    from pid 123"); "" when it wrote none, as after a SIGKILL (libvirt's own lines are left out: its
    "shutting down, reason=crashed" is what `stop_reason` says)."""
    p = qemu_log(resource)
    if p is None:
        return ""
    try:
        with p.open("rb") as f:
            f.seek(max(0, p.stat().st_size - 4096))
            text = f.read().decode("utf-8", "replace")
        lines = [x.strip() for x in text.splitlines() if re.match(r"qemu-system[\w-]*: ", x.strip())]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def virtlogd_runs() -> bool:
    """Whether a virtlogd process runs on this host (its /proc comm), without asking any daemon."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "virtlogd":
                return True
        except OSError:
            continue
    return False


def is_qemu_of(pid: int, resource: str) -> bool:
    """The process is this domain's QEMU: its command line names the domain (a pid may be reused)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    needle = f"guest={resource},".encode()
    return any(needle in a for a in args)


def end_qemu(pid: int, resource: str) -> bool:
    """SIGTERM, then SIGKILL after QEMU_TERM_WAIT_S; True once the process is gone."""
    for sig, wait_s in ((signal.SIGTERM, QEMU_TERM_WAIT_S), (signal.SIGKILL, 2.0)):
        if not is_qemu_of(pid, resource):
            return True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and is_qemu_of(pid, resource):
            time.sleep(0.05)
    return not is_qemu_of(pid, resource)


CGROUP_ROOT = Path("/sys/fs/cgroup")


def domain_cgroups(resource: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """The cgroups libvirt made for this domain's QEMU, in every hierarchy (v1 and v2 alike):
    `<hierarchy>/machine/qemu-<id>-<domain>.libvirt-qemu`."""
    return sorted(root.glob(f"*/machine/qemu-*-{resource}.libvirt-qemu")) + sorted(
        root.glob(f"machine/qemu-*-{resource}.libvirt-qemu")
    )


def remove_cgroups(resource: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Remove the (now empty) cgroups of a QEMU vmlab ended itself; returns those still there.

    libvirtd removes them when it sees its QEMU exit; with libvirtd gone nobody does, and a restarted
    libvirtd finds the domain shut off and leaves them. A cgroup is removed with rmdir, deepest first
    (vcpu0, emulator, then the domain's), and only once no process is in it: rmdir refuses otherwise.
    """
    left: list[Path] = []
    for group in domain_cgroups(resource, root):
        for folder, _dirs, _files in sorted(os.walk(group), key=lambda w: -len(Path(w[0]).parts)):
            with contextlib.suppress(OSError):
                Path(folder).rmdir()
        if group.exists():
            left.append(group)
    return left


def remove_cgroups_soon(resource: str, wait_s: float = 5.0, root: Path = CGROUP_ROOT) -> list[Path]:
    """`remove_cgroups`, tried again for a few seconds: a destroyed QEMU leaves its cgroups a moment
    after the call returns (rmdir refuses while a thread of it is still in one)."""
    deadline = time.monotonic() + wait_s
    while (left := remove_cgroups(resource, root)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def remove_without_daemon(
    uri: str,
    resource: str,
    pid: int | None,
    remove_state: Callable[[], None],
    wait_s: float = DAEMON_WAIT_S,
) -> str | None:
    """Remove a domain whose libvirtd stopped answering; None when nothing is left, else one line
    saying what is left and the command that removes it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn = lv.open_connection(uri)
        except NotAvailable:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
            continue
        try:
            dom = lv.lookup(conn, resource)
            if dom is not None:
                lv.destroy(dom)
            # a libvirtd restarted under a running QEMU does not always remove the cgroups it made
            # before (seen here: all of them left in every v1 hierarchy); they are empty once QEMU is gone
            remove_cgroups_soon(resource)
            remove_state()
            log.warning("libvirtd answers again: %s removed through it", resource)
            return None
        except lv.DaemonGone:
            if time.monotonic() >= deadline:
                break
        finally:
            lv.close(conn)
    ended = pid is not None and end_qemu(pid, resource)
    if ended:
        remove_cgroups_soon(resource)
    remove_state()
    what = f"QEMU (pid {pid}) was ended" if ended else "its QEMU could not be identified on this host"
    virsh = f"virsh -c {uri}"
    by_hand = (
        f"{virsh} undefine {resource}"
        if ended
        else f"{virsh} destroy {resource}; {virsh} undefine {resource}"
    )
    return (
        f"libvirtd did not answer for {wait_s:.0f} s: {what}; domain {resource} is still defined in "
        f"libvirt: once libvirtd runs again, `vmlab down --all` (or `{by_hand}`) removes it"
    )
