"""Where vmlab keeps images and run state.

Root defaults to /var/lib/vmlab, not ~/.cache: libvirt's QEMU user must read kernels and write serial
logs, and /root is 0700 (DESIGN.md). A normal user gets ~/.cache/vmlab (qemu:///session runs as them).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path


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
