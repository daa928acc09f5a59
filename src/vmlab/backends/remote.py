"""A libvirt host reached over SSH (`qemu+ssh://user@host[:port]/system?keyfile=...`).

libvirt itself tunnels its RPC through the `ssh` binary, but three things vmlab does live outside that
tunnel and would silently act on *this* host: the guest's SSH port is forwarded on the remote's
127.0.0.1, QEMU writes the serial log into a remote file, and the domain XML names kernel and initrd
paths that must exist on the remote. So one paramiko connection to the libvirt host carries all three:
`direct-tcpip` channels to the forwarded port (used as the socket of the guest SSH session), SFTP for the
console log, and SFTP uploads of the boot files into the same absolute paths.

Trust is the user's: keys from the agent, ~/.ssh or `keyfile=`; host keys from ~/.ssh/known_hosts or
`known_hosts=` (the query parameter libvirt's libssh transports use), never auto-added.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import os
import posixpath
import shlex
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from vmlab.errors import BackendError, NotAvailable, UsageError
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


class RemoteHost:
    """One paramiko connection to the libvirt host; reconnects lazily when the transport dropped."""

    def __init__(self, target: SshTarget, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout
        self._client: Any = None
        self._sftp: Any = None
        self._lock = threading.Lock()
        self._groups: dict[str, int | None] = {}

    # --- connection ------------------------------------------------------------------------------

    def _transport(self) -> Any:
        with self._lock:
            if self._client is not None:
                t = self._client.get_transport()
                if t is not None and t.is_active():
                    return t
                self._close_locked()
            self._client = self._connect()
            return self._client.get_transport()

    def _connect(self) -> Any:
        import paramiko

        t = self.target
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.load_system_host_keys(str(t.known_hosts) if t.known_hosts else None)
        except OSError as e:
            raise NotAvailable(f"cannot read known_hosts for {t.label}: {e}") from e
        hint_trust = (
            f"check the host's fingerprint, then `ssh -p {t.port} {t.user}@{t.host} true` once "
            "(or add it to the file named by known_hosts= in the URI)"
        )
        try:
            client.connect(
                t.host,
                port=t.port,
                username=t.user,
                key_filename=str(t.keyfile) if t.keyfile else None,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                allow_agent=True,
                look_for_keys=t.keyfile is None,
            )
        except paramiko.BadHostKeyException as e:
            client.close()
            raise BackendError(
                f"libvirt host {t.label} presented a host key that differs from known_hosts",
                hint="verify the host, then fix its known_hosts entry",
            ) from e
        except paramiko.AuthenticationException as e:
            client.close()
            raise NotAvailable(
                f"SSH login to libvirt host {t.label} was refused: {e}",
                hint="load a key into ssh-agent, or add keyfile=PATH to the -c URI",
            ) from e
        except paramiko.SSHException as e:
            client.close()
            unknown = "not found in known_hosts" in str(e)
            raise NotAvailable(
                f"SSH to libvirt host {t.label} failed: {e}",
                hint=hint_trust if unknown else "check that sshd runs there and the URI's user/port",
            ) from e
        except OSError as e:
            client.close()
            raise NotAvailable(
                f"libvirt host {t.label} does not answer on SSH: {e}",
                hint="check host and port in the -c URI",
            ) from e
        return client

    def sftp(self) -> Any:
        transport = self._transport()
        with self._lock:
            if self._sftp is None or self._sftp.get_channel().get_transport() is not transport:
                import paramiko

                self._sftp = paramiko.SFTPClient.from_transport(transport)
            return self._sftp

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection must not mask the real error
            if self._sftp is not None:
                self._sftp.close()
        with contextlib.suppress(Exception):
            if self._client is not None:
                self._client.close()
        self._sftp = None
        self._client = None

    # --- guest ports -----------------------------------------------------------------------------

    def dial(self, host: str, port: int, timeout: float) -> Any:
        """A socket-like channel to host:port as seen from the libvirt host (OSError when refused)."""
        import paramiko

        try:
            transport = self._transport()
        except BackendError as e:
            raise ConnectionError(e.one_line()) from e
        try:
            chan = transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout)
        except (paramiko.SSHException, EOFError) as e:
            raise ConnectionRefusedError(
                f"{host}:{port} via {self.target.label}: {e or 'channel refused'}"
            ) from e
        chan.settimeout(timeout)
        return chan

    # --- files -----------------------------------------------------------------------------------

    def read_from(self, path: Path, offset: int) -> bytes:
        """Bytes of a remote file from `offset` on (b"" while it does not exist yet)."""
        import paramiko

        sftp = self.sftp()
        try:
            with sftp.open(str(path), "rb") as f:
                f.seek(offset)
                data: bytes = f.read()
                return data
        except FileNotFoundError:
            return b""
        except (OSError, paramiko.SSHException) as e:
            if getattr(e, "errno", None) == 2:
                return b""
            raise BackendError(f"reading {path} on libvirt host {self.target.label} failed: {e}") from e

    def makedirs(self, path: Path) -> None:
        """mkdir -p on the remote; each directory it creates gets the mode of the same local one."""
        sftp = self.sftp()
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            p = posixpath.join(*parts[:i])
            try:
                sftp.stat(p)
            except FileNotFoundError:
                sftp.mkdir(p)
                sftp.chmod(p, _dir_mode(Path(p)))  # explicit: the server's umask applies to mkdir

    def ensure_file(self, local: Path) -> str | None:
        """Upload `local` to the same absolute path unless an identical copy is there; keep its mode
        and owner (group by name, since gids differ between hosts). Returns why it uploaded, or None."""
        sftp = self.sftp()
        remote = str(local)
        reason = upload_reason(sftp, local, remote, self.sha256_on_host)
        if reason is None:
            return None
        log.info("uploading %s to %s (%s)", local, self.target.label, reason)
        st = local.stat()
        self.makedirs(local.parent)
        tmp = f"{remote}.vmlab-upload-{uuid.uuid4().hex[:8]}"
        try:
            with sftp.open(tmp, "wb") as f:
                f.set_pipelined(True)
                sftp.chmod(tmp, 0o600)  # no window in which a secret is readable by others
                with local.open("rb") as src:
                    while chunk := src.read(CHUNK):
                        f.write(chunk)
            self._chown_like(tmp, st)
            sftp.chmod(tmp, stat.S_IMODE(st.st_mode))
            sftp.posix_rename(tmp, remote)
        except BaseException:
            with contextlib.suppress(Exception):
                sftp.remove(tmp)
            raise
        return reason

    def prepare_files(self, state: Path, files: list[Path]) -> dict[str, str]:
        """The per-run state dir (QEMU writes the console log there) and the boot files, on the remote.

        Returns {path: why it was uploaded} for the files that were copied.
        """
        import paramiko

        try:
            self.makedirs(state)
            uploaded = {}
            for f in files:
                reason = self.ensure_file(f)
                if reason:
                    uploaded[str(f)] = reason
            return uploaded
        except (OSError, paramiko.SSHException) as e:
            raise BackendError(
                f"preparing files on libvirt host {self.target.label} failed: {e}",
                hint="the login user must be able to write the image cache and run dirs there "
                "(same paths as here); root@ is the simple case",
            ) from e

    def sha256_on_host(self, path: str) -> str | None:
        """`sha256sum` run on the libvirt host (disk speed, 64 bytes back); None if that fails."""
        import paramiko

        try:
            _in, out, _err = self._transport_client().exec_command(
                f"sha256sum -- {shlex.quote(path)}", timeout=self.timeout
            )
            text = out.read().decode("ascii", "replace")
            rc = out.channel.recv_exit_status()
        except (OSError, paramiko.SSHException) as e:
            log.debug("sha256sum on %s failed: %s", self.target.label, e)
            return None
        digest = text.split()[0] if text.split() else ""
        return digest if rc == 0 and len(digest) == 64 else None

    def _transport_client(self) -> Any:
        self._transport()
        return self._client

    def _chown_like(self, remote: str, st: os.stat_result) -> None:
        """Same owner as the local file: root's files as root, the QEMU group by its remote gid."""
        if self.target.user != "root":
            return  # only root may chown; a user's own files stay the user's, which QEMU (session) reads
        import grp

        try:
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            group = ""
        gid = self._remote_gid(group) if group else None
        self.sftp().chown(remote, st.st_uid, gid if gid is not None else 0)

    def _remote_gid(self, group: str) -> int | None:
        if group not in self._groups:
            self._groups[group] = None
            for line in self._read_text("/etc/group").splitlines():
                fields = line.split(":")
                if len(fields) >= 3 and fields[0] == group and fields[2].isdigit():
                    self._groups[group] = int(fields[2])
                    break
        return self._groups[group]

    def _read_text(self, path: str) -> str:
        try:
            return self.read_from(Path(path), 0).decode("utf-8", "replace")
        except OSError:
            return ""

    def remove_tree(self, path: Path) -> None:
        """rm -r of a vmlab state directory on the remote, tolerant of "already gone"."""
        import paramiko

        sftp = self.sftp()
        try:
            for entry, is_dir in reversed(list(_walk(sftp, str(path)))):
                with contextlib.suppress(OSError):
                    (sftp.rmdir if is_dir else sftp.remove)(entry)
        except paramiko.SSHException as e:
            raise BackendError(f"removing {path} on libvirt host {self.target.label} failed: {e}") from e

    def rmdir(self, path: Path) -> None:
        import paramiko

        try:
            self.sftp().rmdir(str(path))
        except OSError:
            pass  # not empty or gone: like the local run dir, it stays while other instances use it
        except paramiko.SSHException as e:
            raise BackendError(f"removing {path} on libvirt host {self.target.label} failed: {e}") from e


def _walk(sftp: Any, top: str) -> Iterator[tuple[str, bool]]:
    """Pre-order (path, is_dir) of a remote tree; nothing when `top` is gone."""
    try:
        entries = sftp.listdir_attr(top)
    except OSError:
        return
    yield top, True
    for e in entries:
        p = posixpath.join(top, e.filename)
        if e.st_mode is not None and stat.S_ISDIR(e.st_mode):
            yield from _walk(sftp, p)
        else:
            yield p, False


def _dir_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o755
