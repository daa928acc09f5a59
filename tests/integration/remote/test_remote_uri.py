"""A libvirt host behind `qemu+ssh://` (a private sshd on this machine, conftest.py): up, exec,
console and down through it, and the SSH trust rules (known_hosts only, never learned)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from vmlab.backends.base import VM_STAGES, InstanceSpec
from vmlab.cli.main import app
from vmlab.paths import new_run_id

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]


def test_cli_up_exec_console_down_over_ssh(ssh_uri: str) -> None:
    runner = CliRunner()
    try:
        up = runner.invoke(app, ["up", "rem1", "--kind", "vm", "-c", ssh_uri, "--json"])
        assert up.exit_code == 0, up.output
        data = json.loads(up.stdout)
        assert tuple(data["ladder_s"]) == VM_STAGES
        ran = runner.invoke(app, ["exec", "rem1", "-c", ssh_uri, "--", "cat", "/proc/cmdline"])
        assert ran.exit_code == 0, ran.output
        assert "console=ttyS0" in ran.stdout
        failed = runner.invoke(app, ["exec", "rem1", "-c", ssh_uri, "--", "sh", "-c", "exit 7"])
        assert failed.exit_code == 7
        con = runner.invoke(app, ["console", "rem1", "-c", ssh_uri, "--lines", "500"])
        assert con.exit_code == 0, con.output
        assert "VMLAB_READY uptime=" in con.stdout
        listed = json.loads(runner.invoke(app, ["ls", "-c", ssh_uri, "--json"]).stdout)
        (row,) = [r for r in listed if r["name"] == "rem1"]
        assert row["address"].endswith(f" via root@127.0.0.1:{urlsplit(ssh_uri).port}")
    finally:
        down = runner.invoke(app, ["down", "rem1", "-c", ssh_uri])
    assert down.exit_code == 0, down.output
    after = json.loads(runner.invoke(app, ["ls", "-c", ssh_uri, "--json"]).stdout)
    assert "rem1" not in [r["name"] for r in after]


def test_guest_port_and_console_go_through_the_ssh_server(ssh_uri: str) -> None:
    """Every way vmlab reaches the guest uses the libvirt host's SSH connection, none a local socket:
    the dialer and the console reader of the backend's RemoteHost are wrapped to record their calls
    (the real ones still run)."""
    from vmlab.backends.libvirt.backend import LibvirtBackend

    backend = LibvirtBackend(uri=ssh_uri)
    assert backend.remote is not None
    remote = backend.remote
    dialed: list[tuple[str, int]] = []
    read: list[Path] = []
    real_dial, real_read = remote.dial, remote.read_from

    def dial(host: str, port: int, timeout: float) -> Any:
        dialed.append((host, port))
        return real_dial(host, port, timeout)

    def read_from(path: Path, offset: int) -> bytes:
        read.append(path)
        return real_read(path, offset)

    remote.dial = dial  # type: ignore[method-assign]
    remote.read_from = read_from  # type: ignore[method-assign]
    inst = None
    try:
        inst = backend.create(InstanceSpec(name="rem2", run_id=new_run_id(), lab="tests"))
        inst.start()
        inst.wait_ready()
        assert tuple(inst.ladder) == VM_STAGES
        before = len(dialed)
        assert inst.exec(["echo", "via-ssh"]).check().stdout == "via-ssh\n"
        assert set(dialed) == {("127.0.0.1", inst.ssh_port)}
        # at least the port probe, the banner and the SSH session; exec reuses the open session
        assert before >= 3 and len(dialed) == before
        assert read and set(read) == {inst.console_path}
        _openssh_through_the_libvirt_host(ssh_uri, inst.ssh_port, inst.meta)
        assert inst.pid() is None  # a remote QEMU is not a process of this host
    finally:
        if inst is not None:
            inst.destroy()
        backend.close()
    assert inst is not None and not inst.console_path.parent.exists()


def _openssh_through_the_libvirt_host(uri: str, port: int, meta: dict[str, str]) -> None:
    """What an interactive `vmlab ssh` to a remote guest needs: OpenSSH with openssh_proxy_command."""
    import subprocess

    from vmlab.backends.libvirt.target import openssh_proxy_command, ssh_target

    target = ssh_target(uri)
    assert target is not None
    argv = ["/usr/bin/ssh", "-p", str(port), "-i", meta["client_key"], "-o", "IdentitiesOnly=yes"]
    argv += ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    argv += ["-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null"]
    argv += ["-o", f"KnownHostsCommand=/bin/echo [127.0.0.1]:{port} {meta['host_key']}"]
    argv += ["-o", f"ProxyCommand={openssh_proxy_command(target)}", "root@127.0.0.1", "echo via-openssh"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert (res.returncode, res.stdout) == (0, "via-openssh\n"), res.stderr


def test_remote_files_are_checked_on_the_host(private_sshd: dict[str, Any], tiny_image: Any) -> None:
    """The boot files exist there already (same machine): the check hashes on the host and uploads
    nothing; a missing state dir is created with the local directory's mode."""
    from vmlab.backends.libvirt.remote import RemoteHost
    from vmlab.backends.libvirt.target import ssh_target
    from vmlab.spec.digest import sha256_file

    target = ssh_target(str(private_sshd["uri"]))
    assert target is not None
    host = RemoteHost(target, timeout=20.0)
    try:
        kernel = Path(tiny_image.kernel)
        assert host.sha256_on_host(str(kernel)) == sha256_file(kernel)
        assert host.sha256_on_host("/nonexistent/vmlab") is None
        assert host.ensure_file(kernel) is None
        state = Path(private_sshd["dir"]) / "runs" / "r1" / "g1"
        assert host.prepare_files(state, [kernel]) == {}
        assert state.is_dir()
        host.remove_tree(state)
        host.rmdir(state.parent)
        assert not state.parent.exists()
    finally:
        host.close()


def test_unknown_host_key_is_refused_not_learned(private_sshd: dict[str, Any], tmp_path: Path) -> None:
    from vmlab.backends.libvirt.remote import RemoteHost
    from vmlab.backends.libvirt.target import ssh_target
    from vmlab.errors import NotAvailable

    empty = tmp_path / "known_hosts"
    empty.write_text("")
    uri = (
        f"qemu+ssh://root@127.0.0.1:{private_sshd['port']}/system"
        f"?keyfile={private_sshd['key']}&known_hosts={empty}"
    )
    target = ssh_target(uri)
    assert target is not None
    host = RemoteHost(target, timeout=10.0)
    with pytest.raises(NotAvailable, match="not found in known_hosts") as ei:
        host.sftp()
    assert ei.value.hint and "fingerprint" in ei.value.hint
    host.close()
    assert empty.read_text() == ""  # RejectPolicy: nothing was added


def test_wrong_key_is_refused(private_sshd: dict[str, Any], tmp_path: Path) -> None:
    import subprocess

    from vmlab.backends.libvirt.remote import RemoteHost
    from vmlab.backends.libvirt.target import ssh_target
    from vmlab.errors import NotAvailable

    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    uri = (
        f"qemu+ssh://root@127.0.0.1:{private_sshd['port']}/system"
        f"?keyfile={other}&known_hosts={private_sshd['known_hosts']}"
    )
    target = ssh_target(uri)
    assert target is not None
    host = RemoteHost(target, timeout=10.0)
    with pytest.raises(NotAvailable, match="refused") as ei:
        host.sftp()
    assert ei.value.hint and "keyfile=" in ei.value.hint
    host.close()


def test_missing_keyfile_is_one_line_usage_error(private_sshd: dict[str, Any], tmp_path: Path) -> None:
    uri = f"qemu+ssh://root@127.0.0.1:{private_sshd['port']}/system?keyfile={tmp_path / 'nope'}"
    res = CliRunner().invoke(app, ["ls", "-c", uri, "--json"])
    assert res.exit_code == 2
    assert "keyfile=" in res.output and "not a readable file" in res.output
