"""What each runtime's instance answers for `vmlab ssh` (the argv is built, not run: no daemon)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from tests.conftest import import_or_unavailable, need_program

from vmlab.backends.base import InstanceBase
from vmlab.errors import NotAvailable


class _NoShell(InstanceBase):
    kind = "container"
    runtime = "nothing"


def test_a_runtime_without_a_shell_says_so_in_one_line() -> None:
    with pytest.raises(NotAvailable) as e:
        _NoShell("n1", "vmlab-r-n1").shell_argv()
    assert "\n" not in e.value.one_line() and "no interactive shell" in e.value.one_line()


def _vm(uri: str, meta: dict[str, str]) -> Any:
    from vmlab.backends.libvirt.instance import LibvirtInstance

    inst = object.__new__(LibvirtInstance)
    inst.name = "g1"
    inst.meta = meta
    inst.backend = SimpleNamespace(uri=uri)  # type: ignore[assignment]
    return inst


META = {"ssh_port": "2222", "client_key": "/k/id", "host_key": "ssh-ed25519 AAAA"}


def test_a_local_vm_is_openssh_to_the_forward_with_the_pinned_key() -> None:
    need_program("ssh", "openssh-client")
    import_or_unavailable("libvirt")
    argv = _vm("qemu:///system", META).shell_argv()
    # by hand: port 2222 on 127.0.0.1, the client key only, the host key pinned, no known_hosts file
    assert argv == [
        "ssh", "-p", "2222", "-i", "/k/id", "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "KnownHostsCommand=/bin/echo [127.0.0.1]:2222 ssh-ed25519 AAAA",
        "root@127.0.0.1",
    ]  # fmt: skip


def test_a_remote_vm_hops_through_the_libvirt_host() -> None:
    need_program("ssh", "openssh-client")
    import_or_unavailable("libvirt")
    argv = _vm("qemu+ssh://alice@lab.example:2200/system", META).shell_argv()
    assert argv[-1] == "root@127.0.0.1"
    proxy = argv[-2]
    assert proxy.startswith("ProxyCommand=ssh -W %h:%p -p 2200 ") and proxy.endswith("alice@lab.example")


def test_a_vm_never_started_has_no_shell() -> None:
    import_or_unavailable("libvirt")
    need_program("ssh", "openssh-client")
    with pytest.raises(NotAvailable, match="no SSH forward"):
        _vm("qemu:///system", {"ssh_port": "0"}).shell_argv()
