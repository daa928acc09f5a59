"""Where vmlab keeps images and run state, and where it finds the host's system tools.

Root defaults to /var/lib/vmlab, not ~/.cache: libvirt's QEMU user (libvirt-qemu under qemu:///system)
must read kernels and write serial logs, and /root is 0700. A normal user gets ~/.cache/vmlab, which
is theirs: qemu:///session runs QEMU as them.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import time
from pathlib import Path

# Debian keeps administrative tools (depmod, runuser, useradd) in these, which are not on a normal
# user's PATH; running them needs no privilege (depmod -b writes into a directory we own).
SYSTEM_BIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def system_tool(name: str) -> str | None:
    """The absolute path of `name` on PATH or in the sbin directories; None when the host lacks it."""
    found = shutil.which(name)
    if found is not None:
        return found
    return shutil.which(name, path=os.pathsep.join(SYSTEM_BIN_DIRS))


def vmlab_home() -> Path:
    env = os.environ.get("VMLAB_HOME")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/vmlab")
    return Path.home() / ".cache" / "vmlab"


def usable_home() -> Path:
    """VMLAB_HOME with its runs/ folder made and shown writable, before a run creates anything.

    A home that cannot be created or written (read-only, a file, full, not ours) is one UsageError
    naming it, so a run stops before any step instead of failing half-way through its first write.
    """
    from vmlab.errors import UsageError, space

    home = vmlab_home()
    fix = "set VMLAB_HOME to a writable folder, e.g. export VMLAB_HOME=~/vmlab"
    probe = home / "runs" / f".probe-{secrets.token_hex(4)}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"vmlab\n")
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as e:
        why = {
            errno.EROFS: "it is on a read-only file system",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
            errno.ENOSPC: f"its disk is full ({space(home, None)})",
            errno.ENOTDIR: "a file stands where a folder is needed",
            errno.EEXIST: "a file stands where a folder is needed",
        }.get(e.errno or 0, e.strerror or str(e))
        raise UsageError(f"VMLAB_HOME {home} cannot be used: {why}", hint=fix) from None
    return home


def images_dir() -> Path:
    return vmlab_home() / "images"


def runs_dir() -> Path:
    return vmlab_home() / "runs"


def new_run_id() -> str:
    """Sortable by time, unique across parallel runs: 20261125-151000-3f9a1c."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def run_dir(run_id: str) -> Path:
    """One directory per run so two runs in parallel never collide."""
    d = runs_dir() / run_id
    d.mkdir(parents=True, exist_ok=True)
    return d
