"""The podman runtime's health (what `vmlab doctor` shows and `requires = ["podman"]` checks) and why it
refuses a user: root (its runc fails setting rlimits here) or no podman installed."""

from __future__ import annotations

import os
import shutil
import subprocess

from vmlab.errors import BackendError, NotAvailable
from vmlab.runtime_registry import Health

CALL_TIMEOUT_S = 120.0
INSTALL = "apt-get install podman uidmap fuse-overlayfs slirp4netns"
ROOT_REFUSED = (
    "podman serves normal users only: as root its runc fails to set rlimits here "
    '("error setting rlimit type 6/7")'
)
ROOT_HINT = "run vmlab as a normal user with a subordinate uid range (useradd gives one), or use docker"


def refusal() -> NotAvailable | None:
    """Why podman cannot serve this user, or None."""
    if os.geteuid() == 0:
        return NotAvailable(ROOT_REFUSED, hint=ROOT_HINT)
    if shutil.which("podman") is None:
        return NotAvailable("podman is not installed", hint=INSTALL)
    return None


def probe() -> Health:
    """What `vmlab doctor` shows and `requires = ["podman"]` checks: podman answers, rootless."""
    refused = refusal()
    if refused is not None:
        return Health("fail", refused.message, refused.hint or "")
    try:
        out = podman("info", "--format", "{{.Version.Version}} {{.Host.Security.Rootless}}", timeout=60)
    except BackendError as e:
        return Health("fail", e.message, "check /etc/subuid and /etc/subgid have a range for this user")
    version, _, rootless = out.strip().partition(" ")
    return Health("ok", f"Podman {version}, rootless {rootless}", data={"version": version})


def podman(*args: str, timeout: float = CALL_TIMEOUT_S, check: bool = True) -> str:
    """One podman command; its failure is one line naming the command and podman's last words."""
    try:
        p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise BackendError(f"podman {args[0]} did not answer within {timeout:g} s") from e
    if check and p.returncode != 0:
        last = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        raise BackendError(f"podman {args[0]} failed: {last[:200]}")
    return p.stdout
