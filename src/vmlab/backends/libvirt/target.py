"""Where an ssh libvirt URI points (user, host, port, key, known hosts), the OpenSSH command that hops
through it, and whether a boot file must be uploaded to it (by size and sha256). No connection here:
remote.py holds the one paramiko connection."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import shlex
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from vmlab.errors import BackendError, UsageError
from vmlab.spec.digest import sha256_file

log = logging.getLogger("vmlab")
SSH_TRANSPORTS = ("ssh", "libssh", "libssh2")
CHUNK = 1 << 20


@dataclass(frozen=True)
class SshTarget:
    """Where and how to log in to the libvirt host, parsed from the libvirt URI."""

    user: str
    host: str
    port: int
    keyfile: Path | None
    known_hosts: Path | None

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def ssh_target(uri: str) -> SshTarget | None:
    """The SSH login for an ssh-transport URI (`driver+ssh://...`), None for any other URI."""
    parts = urlsplit(uri)
    _driver, _, transport = parts.scheme.partition("+")
    if transport not in SSH_TRANSPORTS:
        return None
    if not parts.hostname:
        raise UsageError(f"libvirt URI {uri!r} names no host", hint="qemu+ssh://USER@HOST/system")
    try:
        port = parts.port or 22
    except ValueError as e:
        raise UsageError(f"libvirt URI {uri!r} has a bad port", hint="qemu+ssh://USER@HOST:22/system") from e
    # like libvirt: percent-decoding only ("+" stays "+", unlike form-encoded parse_qs)
    query = dict(
        (unquote(k), unquote(v)) for k, _, v in (kv.partition("=") for kv in parts.query.split("&") if kv)
    )

    def path(key: str) -> Path | None:
        val = query.get(key)
        return Path(val).expanduser() if val else None

    keyfile, known = path("keyfile"), path("known_hosts")
    for key, p in (("keyfile", keyfile), ("known_hosts", known)):
        if p is not None and not p.is_file():
            raise UsageError(
                f"{key}={p} in the libvirt URI is not a readable file", hint=f"fix {key}= in -c URI"
            )
    return SshTarget(parts.username or _local_user(), parts.hostname, port, keyfile, known)


def openssh_proxy_command(target: SshTarget) -> str:
    """An OpenSSH ProxyCommand reaching a guest's forwarded port through the libvirt host, for an
    interactive `ssh` to a remote guest (`-W` connects from the libvirt host, so 127.0.0.1 is its own)."""
    argv = ["ssh", "-W", "%h:%p", "-p", str(target.port)]
    if target.keyfile is not None:
        argv += ["-i", str(target.keyfile), "-o", "IdentitiesOnly=yes"]
    if target.known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={target.known_hosts}"]
    argv += ["-o", "StrictHostKeyChecking=yes", f"{target.user}@{target.host}"]
    return shlex.join(argv)


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"


class SftpLike(Protocol):
    """The part of paramiko's SFTPClient the upload decision uses (a fake in unit tests)."""

    def stat(self, path: str) -> Any: ...

    def open(self, filename: str, mode: str = "r", bufsize: int = -1) -> Any: ...


def sha256_remote(sftp: SftpLike, path: str) -> str:
    h = hashlib.sha256()
    with sftp.open(path, "rb") as f:
        with contextlib.suppress(AttributeError):
            f.prefetch()  # paramiko: pipeline the reads, otherwise one round trip per 32 KiB
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def upload_reason(
    sftp: SftpLike, local: Path, remote: str, remote_hash: Callable[[str], str | None] | None = None
) -> str | None:
    """Why `local` must be copied to `remote` ("missing", "size", "sha256"), or None if it is there.

    Size first (one stat); the hash only when sizes agree. `remote_hash` hashes on the remote (None
    when it cannot), which spares shipping the file back over the link; else it is read over SFTP.
    """
    try:
        st = sftp.stat(remote)
    except FileNotFoundError:
        return "missing"
    except OSError as e:  # paramiko maps SFTP "no such file" to FileNotFoundError; keep other errors
        if getattr(e, "errno", None) == 2:
            return "missing"
        raise
    if st.st_mode is not None and not stat.S_ISREG(st.st_mode):
        raise BackendError(f"{remote} exists on the libvirt host but is not a regular file")
    if st.st_size != local.stat().st_size:
        return "size"
    theirs = remote_hash(remote) if remote_hash is not None else None
    if (theirs or sha256_remote(sftp, remote)) != sha256_file(local):
        return "sha256"
    return None
