"""Where vmlab keeps images and run state, and where it finds the host's system tools.

Root defaults to /var/lib/vmlab, not ~/.cache: libvirt's QEMU user (libvirt-qemu under qemu:///system)
must read kernels and write serial logs, and /root is 0700. A normal user gets ~/.cache/vmlab, which
is theirs: qemu:///session runs QEMU as them.
"""

from __future__ import annotations

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
