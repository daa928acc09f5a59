"""Removing a container: force-removal through dockerd, tried again while dockerd is slow or its
containerd is away, and what containerd keeps of a container whose start it died in (root only)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

import docker.errors

from vmlab.backends.docker.errors import CONTAINERD_WAIT_S, RESTART_DOCKERD, ContainerdGone, call

log = logging.getLogger("vmlab")

# dockerd's own containerd (no systemd): its socket, namespace, and where a task keeps its bundle
CONTAINERD_SOCKET = "/run/docker/containerd/containerd.sock"
CONTAINERD_DIRS = (
    "/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/{id}",
    "/var/lib/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/{id}",
    "/run/docker/containerd/{id}",
)


def _shims_of(container_id: str) -> list[int]:
    import psutil

    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = p.info.get("cmdline") or []
        if "containerd-shim" in (p.info.get("name") or "") and container_id in cmd:
            found.append(p.pid)
    return found


def containerd_leftover_commands(container_id: str) -> str:
    dirs = " ".join(d.format(id=container_id) for d in CONTAINERD_DIRS)
    return (
        f"ctr --address {CONTAINERD_SOCKET} -n moby containers delete {container_id}; "
        f"kill the containerd-shim whose -id is {container_id}; rm -rf {dirs}"
    )


def remove_containerd_leftovers(container_id: str, wait_s: float = CONTAINERD_WAIT_S) -> bool:
    """What containerd keeps of a container whose start it died in, once Docker forgot it: a
    container record, an idle shim, its bundle folders (seen here; dockerd never removes them, not
    even when restarted). Removed through `ctr` as root, once containerd answers; False when that
    could not be done (not root, no ctr, containerd away), so the caller prints the commands."""
    import shutil
    import subprocess

    ctr = shutil.which("ctr")
    if os.geteuid() != 0 or ctr is None or not os.path.exists(CONTAINERD_SOCKET):
        return False
    base = [ctr, "--address", CONTAINERD_SOCKET, "--namespace", "moby"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=30, check=False)

    deadline = time.monotonic() + wait_s
    while run("version").returncode != 0:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    if run("containers", "info", container_id).returncode == 0:
        run("tasks", "delete", "--force", container_id)
        if run("containers", "delete", container_id).returncode != 0:
            return False
    for pid in _shims_of(container_id):  # a shim with no task left: it would wait forever
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        if container_id in f.read():
            return False  # a rootfs still mounted: not ours to tear down blindly
    for d in CONTAINERD_DIRS:
        shutil.rmtree(d.format(id=container_id), ignore_errors=True)
    return True


def remove_container(client: Any, resource: str, wait_s: float = CONTAINERD_WAIT_S) -> None:
    """Force-remove; tried again when dockerd is slow (removing twice is harmless: NotFound), and
    while containerd is away for up to `wait_s` (dockerd restarts it; the container outlives it). If
    it stays away, the error names the exact command that removes what is left."""

    def remove() -> None:
        try:
            client.api.remove_container(resource, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if "is already in progress" not in str(e):
                raise
            _wait_gone(client, resource)

    deadline = time.monotonic() + wait_s
    while True:
        try:
            call(remove, f"removing container {resource} failed")
            return
        except ContainerdGone as e:
            if time.monotonic() >= deadline:
                raise ContainerdGone(
                    f"removing container {resource} failed: containerd, which runs dockerd's "
                    f"containers, did not answer for {wait_s:.0f} s",
                    hint=f"{RESTART_DOCKERD}, then: docker rm -f {resource}",
                ) from e
            log.info("removing %s: containerd does not answer; trying again (%s)", resource, e.message)
            time.sleep(1.0)


def _wait_gone(client: Any, resource: str, timeout_s: float = 15.0) -> None:
    """dockerd is removing it already (AutoRemove after its process died): wait until it is gone, so
    a caller that removed it can say nothing is left."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            client.api.inspect_container(resource)
        except docker.errors.NotFound:
            return
        time.sleep(0.1)
