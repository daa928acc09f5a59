"""Race-free loopback port allocation across parallel vmlab processes.

Picking a free port (bind to port 0) and QEMU binding it are two steps; a machine-wide lock held from
the pick until the domain has started (QEMU has bound it) means two `vmlab up` never get the same one.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_PATH = Path(tempfile.gettempdir()) / "vmlab-ports.lock"


@contextmanager
def port_lock(path: Path = LOCK_PATH) -> Iterator[None]:
    with flock(path):
        yield


@contextmanager
def flock(path: Path) -> Iterator[None]:
    """An exclusive machine-wide lock on `path` (created world-usable; read-only fds can flock)."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def free_port(host: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    """A port nothing listens on now (the kernel's choice), skipping `avoid`; call under port_lock()."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if not avoid or port not in avoid:
            return port
    raise OSError("no free loopback port found")
