"""The remote libvirt host without a server: URI parsing, the upload decision and the upload itself
against an in-memory SFTP stand-in, and the pluggable dialer/reader of the guest helpers."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from vmlab.backends.libvirt.remote import RemoteHost
from vmlab.backends.libvirt.target import SshTarget, ssh_target, upload_reason
from vmlab.errors import BackendError, UsageError
from vmlab.guest.console import ConsoleLog
from vmlab.guest.ssh import port_open, read_banner

# --- URI ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    ["qemu:///system", "qemu:///session", "test:///default", "qemu+tcp://h/system", "qemu+tls://h/system"],
)
def test_non_ssh_uris_stay_local(uri: str) -> None:
    assert ssh_target(uri) is None


def test_ssh_uri_parts(tmp_path: Path) -> None:
    key, kh = tmp_path / "id", tmp_path / "kh"
    key.write_text("k")
    kh.write_text("")
    t = ssh_target(f"qemu+ssh://alice@lab.example:2222/system?keyfile={key}&known_hosts={kh}&no_tty=1")
    assert t == SshTarget("alice", "lab.example", 2222, key, kh)
    assert t.label == "alice@lab.example:2222"
    bare = ssh_target("qemu+libssh://lab.example/system")
    assert bare is not None and (bare.port, bare.keyfile, bare.known_hosts) == (22, None, None)
    assert bare.user  # the local user, as ssh would use


def test_ssh_uri_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="names no host"):
        ssh_target("qemu+ssh:///system")
    with pytest.raises(UsageError, match="bad port"):
        ssh_target("qemu+ssh://h:99999/system")
    with pytest.raises(UsageError, match=r"keyfile=.*not a readable file"):
        ssh_target(f"qemu+ssh://h/system?keyfile={tmp_path / 'missing'}")


# --- a fake SFTP: a dict of path -> (bytes, mode, uid, gid) -----------------------------------------


class _Attr:
    def __init__(self, size: int, mode: int) -> None:
        self.st_size, self.st_mode = size, mode


class _WFile(io.BytesIO):
    def __init__(self, fs: FakeSftp, path: str) -> None:
        super().__init__()
        self.fs, self.path = fs, path

    def set_pipelined(self, _on: bool) -> None:
        pass

    def close(self) -> None:
        self.fs.files[self.path] = self.getvalue()
        super().close()


class FakeSftp:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.dirs: dict[str, int] = {"/": 0o755}
        self.modes: dict[str, int] = {}
        self.owners: dict[str, tuple[int, int]] = {}
        self.reads: list[str] = []

    def stat(self, path: str) -> _Attr:
        if path in self.files:
            return _Attr(len(self.files[path]), stat.S_IFREG | self.modes.get(path, 0o644))
        if path in self.dirs:
            return _Attr(4096, stat.S_IFDIR | self.dirs[path])
        raise FileNotFoundError(2, "No such file")

    def open(self, filename: str, mode: str = "r", bufsize: int = -1) -> Any:
        if "w" in mode:
            self.files[filename] = b""
            return _WFile(self, filename)
        if filename not in self.files:
            raise FileNotFoundError(2, "No such file")
        self.reads.append(filename)
        return io.BytesIO(self.files[filename])

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        self.dirs[path] = 0o777

    def chmod(self, path: str, mode: int) -> None:
        if path in self.dirs:
            self.dirs[path] = mode
        else:
            self.modes[path] = mode

    def chown(self, path: str, uid: int, gid: int) -> None:
        self.owners[path] = (uid, gid)

    def posix_rename(self, old: str, new: str) -> None:
        self.files[new] = self.files.pop(old)
        self.modes[new] = self.modes.pop(old)
        if old in self.owners:
            self.owners[new] = self.owners.pop(old)

    def remove(self, path: str) -> None:
        del self.files[path]


def _local(tmp_path: Path, data: bytes, mode: int = 0o640) -> Path:
    p = tmp_path / "cache" / "initrd.cpio"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, mode)
    return p


def test_upload_reason_missing_size_sha_same(tmp_path: Path) -> None:
    local = _local(tmp_path, b"abcdef")
    fs = FakeSftp()
    assert upload_reason(fs, local, "/r/x") == "missing"
    fs.files["/r/x"] = b"abc"
    assert upload_reason(fs, local, "/r/x") == "size"
    assert fs.reads == []  # sizes differ: no need to read the remote copy
    fs.files["/r/x"] = b"abcdeX"
    assert upload_reason(fs, local, "/r/x") == "sha256"
    fs.files["/r/x"] = b"abcdef"
    assert upload_reason(fs, local, "/r/x") is None
    assert fs.reads == ["/r/x", "/r/x"]


def test_upload_reason_prefers_the_remote_hash(tmp_path: Path) -> None:
    local = _local(tmp_path, b"abcdef")
    fs = FakeSftp()
    fs.files["/r/x"] = b"abcdef"
    good = hashlib.sha256(b"abcdef").hexdigest()
    assert upload_reason(fs, local, "/r/x", lambda _p: good) is None
    assert upload_reason(fs, local, "/r/x", lambda _p: "0" * 64) == "sha256"
    assert fs.reads == []  # the host hashed it: nothing came back over SFTP
    assert upload_reason(fs, local, "/r/x", lambda _p: None) is None  # no sha256sum there: read it
    assert fs.reads == ["/r/x"]


def test_upload_reason_refuses_a_directory_in_the_way(tmp_path: Path) -> None:
    fs = FakeSftp()
    fs.dirs["/r/x"] = 0o755
    with pytest.raises(BackendError, match="not a regular file"):
        upload_reason(fs, _local(tmp_path, b"a"), "/r/x")


class _FakeRemote(RemoteHost):
    def __init__(self, fs: FakeSftp, user: str = "root") -> None:
        super().__init__(SshTarget(user, "h", 22, None, None))
        self.fs = fs

    def sftp(self) -> Any:
        return self.fs

    def sha256_on_host(self, path: str) -> str | None:
        return None  # no shell on the fake: the SFTP read path


def test_ensure_file_uploads_to_the_same_path_with_the_same_mode(tmp_path: Path) -> None:
    local = _local(tmp_path, b"x" * 3_000_000, mode=0o640)
    fs = FakeSftp()
    fs.files["/etc/group"] = b"root:x:0:\nother:x:7:\n"
    host = _FakeRemote(fs)
    assert host.ensure_file(local) == "missing"
    remote = str(local)
    assert fs.files[remote] == local.read_bytes()
    assert fs.modes[remote] == 0o640
    assert [p for p in fs.files if ".vmlab-upload-" in p] == []  # the temp name was renamed away
    assert fs.owners[remote][0] == local.stat().st_uid
    # every missing parent was created, each with its local mode
    for parent in [p for p in local.parents if str(p) != "/"]:
        assert fs.dirs[str(parent)] == stat.S_IMODE(parent.stat().st_mode)
    assert host.ensure_file(local) is None  # identical now: nothing to do
    fs.files[remote] = b"y" * 3_000_000
    assert host.ensure_file(local) == "sha256"
    assert hashlib.sha256(fs.files[remote]).digest() == hashlib.sha256(local.read_bytes()).digest()


def test_ensure_file_maps_the_group_by_name(tmp_path: Path) -> None:
    import grp

    local = _local(tmp_path, b"secret")
    group = grp.getgrgid(local.stat().st_gid).gr_name
    fs = FakeSftp()
    fs.files["/etc/group"] = f"{group}:x:4242:\n".encode()
    _FakeRemote(fs).ensure_file(local)
    assert fs.owners[str(local)][1] == 4242
    user_fs = FakeSftp()
    _FakeRemote(user_fs, user="alice").ensure_file(local)
    assert user_fs.owners == {}  # only root may chown


# --- dialer and reader hooks -----------------------------------------------------------------------


def test_banner_and_port_through_a_custom_dialer() -> None:
    """The guest helpers use whatever stream the dialer returns (here one end of a socketpair)."""
    calls: list[tuple[str, int]] = []

    def dial(host: str, port: int, timeout: float) -> socket.socket:
        calls.append((host, port))
        a, b = socket.socketpair()

        def serve() -> None:
            with b, contextlib.suppress(OSError):  # port_open hangs up without reading
                b.sendall(b"SSH-2.0-fake\r\n")

        threading.Thread(target=serve, daemon=True).start()
        return a

    assert read_banner("127.0.0.1", 4242, 2.0, dial) == "SSH-2.0-fake"
    assert port_open("127.0.0.1", 4242, 1.0, dial) is True

    def refused(host: str, port: int, timeout: float) -> socket.socket:
        raise ConnectionRefusedError("no")

    assert port_open("127.0.0.1", 4242, 1.0, refused) is False
    assert read_banner("127.0.0.1", 4242, 1.0, refused) is None
    assert calls == [("127.0.0.1", 4242)] * 2


def test_console_log_with_a_custom_reader() -> None:
    data = b"boot\nVMLAB_READY uptime=1.50\n"
    offsets: list[int] = []

    def reader(path: Path, offset: int) -> bytes:
        offsets.append(offset)
        return data[offset:]

    log = ConsoleLog(Path("/remote/console.log"), reader)
    assert log.find_marker("VMLAB_READY") == 1.5
    assert log.read_new() == ""
    assert offsets == [0, len(data)]  # incremental: the second read starts where the first ended


def test_openssh_proxy_command_carries_the_uri_login(tmp_path: Path) -> None:
    import shlex

    from vmlab.backends.libvirt.target import openssh_proxy_command

    key, kh = tmp_path / "my key+1", tmp_path / "kh"
    key.write_text("k")
    kh.write_text("")
    t = ssh_target(f"qemu+ssh://alice@lab.example:2222/system?keyfile={key}&known_hosts={kh}")
    assert t is not None
    argv = shlex.split(openssh_proxy_command(t))
    assert argv[:5] == ["ssh", "-W", "%h:%p", "-p", "2222"]
    assert argv[argv.index("-i") + 1] == str(key)  # a path with a space survives the shell
    assert f"UserKnownHostsFile={kh}" in argv and "StrictHostKeyChecking=yes" in argv
    assert argv[-1] == "alice@lab.example"
