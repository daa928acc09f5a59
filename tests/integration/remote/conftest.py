"""A private sshd on 127.0.0.1 that stands in for a remote libvirt host.

The "remote" is this machine, so its paths exist and its libvirtd is ours; what the tests prove is that
everything vmlab does for a `qemu+ssh://` URI goes through that SSH server (guest port by direct-tcpip,
console by SFTP), with host keys verified against a per-session known_hosts file.

libvirt's ssh transport runs the `ssh` binary, which ignores `known_hosts=` in the URI (that is for
libvirt's libssh transports), so a wrapper `ssh` first on PATH points OpenSSH at the same file with
StrictHostKeyChecking=yes: nothing is ever trusted on first use, neither by libvirt nor by vmlab.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SSHD = Path("/usr/sbin/sshd")
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmlab-test", "-f", str(path)],
        check=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def _wait_banner(port: int, proc: subprocess.Popen[bytes], deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sshd did not answer")


@pytest.fixture(scope="session")
def private_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """sshd -D on 127.0.0.1:<free port>: fresh host key, key-only login as root, killed by its pid."""
    from tests.conftest import unavailable

    for tool in (SSHD, SFTP_SERVER):
        if not tool.exists():
            unavailable(str(tool), "missing (apt-get install openssh-server)")
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        unavailable("the ssh client", "missing (apt-get install openssh-client)")
    d = tmp_path_factory.mktemp("sshd")
    os.chmod(d, 0o700)
    host_pub = _keygen(d / "host_ed25519")
    client_pub = _keygen(d / "client_ed25519")
    (d / "authorized_keys").write_text(client_pub + "\n")
    port = _free_port()
    config = d / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {d / 'host_ed25519'}",
                f"AuthorizedKeysFile {d / 'authorized_keys'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "AllowTcpForwarding yes",
                "StrictModes no",  # the key files live under pytest's tmp dir, below world-writable /tmp
                f"PidFile {d / 'sshd.pid'}",
                f"Subsystem sftp {SFTP_SERVER}",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    known_hosts = d / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {' '.join(host_pub.split()[:2])}\n")
    wrapper_dir = d / "bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "ssh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec {shutil.which('ssh')} -o UserKnownHostsFile={known_hosts} "
        '-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes "$@"\n'
    )
    wrapper.chmod(0o755)
    log = (d / "sshd.log").open("wb")
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    mp = pytest.MonkeyPatch()
    try:
        _wait_banner(port, proc)
        mp.setenv("PATH", f"{wrapper_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        key = d / "client_ed25519"
        yield {
            "port": port,
            "dir": d,
            "key": key,
            "known_hosts": known_hosts,
            "uri": f"qemu+ssh://root@127.0.0.1:{port}/system?keyfile={key}&known_hosts={known_hosts}&no_tty=1",
        }
    finally:
        mp.undo()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def ssh_uri(private_sshd: dict[str, Any], libvirt_available: str, test_home: Path, tiny_image: Any) -> str:
    """The private sshd's URI, once `virsh -c URI version` answers through it (libvirt's own client)."""
    from tests.conftest import probe_command, unavailable

    uri = str(private_sshd["uri"])
    why = probe_command(["virsh", "-c", uri, "version"], timeout=60)
    if why is not None:
        unavailable(f"libvirt over ssh ({uri})", why)
    return uri
