"""SSH to a guest with paramiko: the host key is pinned (from the image manifest), never learned.

A session keeps its transport open so repeated exec calls skip the key exchange, which costs about a
second of TCG time in the guest.
"""

from __future__ import annotations

import base64
import shlex
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vmlab.errors import BackendError
from vmlab.guest.result import ExecResult, as_argv

Dial = Callable[[str, int, float], Any]
"""Opens a socket-like stream to (host, port) within a timeout; raises OSError when refused. The
default is a TCP connection from this host; a remote libvirt host passes an SSH `direct-tcpip` dialer."""


def tcp_dial(host: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def port_open(host: str, port: int, timeout: float = 1.0, dial: Dial = tcp_dial) -> bool:
    try:
        with dial(host, port, timeout):
            return True
    except OSError:
        return False


def read_banner(host: str, port: int, timeout: float = 2.0, dial: Dial = tcp_dial) -> str | None:
    """The server's identification line ("SSH-2.0-dropbear_2022.83"), or None if it closed first.

    With QEMU user networking the host port accepts at once; only the banner proves sshd answers.
    """
    try:
        with dial(host, port, timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = s.recv(256)
                if not chunk:
                    return None
                data += chunk
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].decode("ascii", "replace").strip()
    return line if line.startswith("SSH-") else None


class SshSession:
    def __init__(
        self,
        host: str,
        port: int,
        host_key: str,
        client_key: Path,
        user: str = "root",
        dial: Dial | None = None,
    ) -> None:
        self.host, self.port, self.user = host, port, user
        self.host_key = host_key
        self.client_key = client_key
        self.dial = dial  # None: paramiko opens its own TCP connection
        self._client: Any = None

    def connect(self, timeout: float = 30.0) -> None:
        import paramiko

        if self._client is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.is_active():
                return
            self.close()
        keytype, b64 = self.host_key.split()[:2]
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        pinned = paramiko.Ed25519Key(data=base64.b64decode(b64))
        if keytype != pinned.get_name():
            raise BackendError(f"pinned host key type {keytype} is not supported (expected ssh-ed25519)")
        client.get_host_keys().add(f"[{self.host}]:{self.port}", keytype, pinned)
        try:
            pkey = paramiko.Ed25519Key.from_private_key_file(str(self.client_key))
            sock = self.dial(self.host, self.port, timeout) if self.dial is not None else None
            client.connect(
                self.host,
                port=self.port,
                username=self.user,
                pkey=pkey,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                look_for_keys=False,
                allow_agent=False,
                sock=sock,
            )
        except paramiko.BadHostKeyException as e:
            client.close()
            raise BackendError(
                f"{self.host}:{self.port} presented a host key that is not the pinned one",
                hint="rebuild the image (vmlab image build tiny --force) and recreate the guest",
            ) from e
        except (paramiko.SSHException, OSError) as e:
            client.close()
            raise BackendError(f"SSH to {self.user}@{self.host}:{self.port} failed: {e}") from e
        self._client = client

    def run(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult:
        import paramiko

        argv = as_argv(cmd)
        command = argv[2] if argv[:2] == ("/bin/sh", "-c") else shlex.join(argv)
        t0 = time.monotonic()
        self.connect(timeout=timeout)
        transport = self._client.get_transport()
        try:
            chan = transport.open_session(timeout=timeout)
            chan.settimeout(timeout)
            chan.exec_command(command)
            out_f, err_f = chan.makefile("rb"), chan.makefile_stderr("rb")
            stdout, stderr = out_f.read(), err_f.read()
            rc = chan.recv_exit_status()
            chan.close()
        except TimeoutError as e:
            raise BackendError(f"command {command!r} did not finish within {timeout:.0f} s") from e
        except (paramiko.SSHException, OSError) as e:
            self.close()
            raise BackendError(f"SSH command {command!r} failed: {e}") from e
        return ExecResult(
            argv=argv,
            rc=rc,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=stderr.decode("utf-8", "replace"),
            duration_s=time.monotonic() - t0,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
