"""The libvirt runtime's adapter against libvirt's own test:///default driver: a real libvirt with
an in-process state, no QEMU and no daemon, so listing, lookup, destroy and error translation run fast."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from vmlab.backends.base import NS_URI, Record
from vmlab.errors import BackendError

libvirt = pytest.importorskip("libvirt")


def _xml(name: str, vmlab_name: str) -> str:
    return (
        f"<domain type='test'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os>"
        f"<metadata><v:instance xmlns:v='{NS_URI}'><v:name>{vmlab_name}</v:name><v:run_id>r1</v:run_id>"
        "<v:ssh_port>2222</v:ssh_port></v:instance></metadata></domain>"
    )


@pytest.fixture
def backend() -> Iterator[Any]:
    from vmlab.backends.libvirt_backend import LibvirtBackend

    b = LibvirtBackend("test:///default")
    defined = [b.conn.defineXML(_xml("vmlab-r1-a1", "a1")), b.conn.defineXML(_xml("other", ""))]
    try:
        yield b
    finally:
        for dom in defined:
            with contextlib.suppress(libvirt.libvirtError):
                dom.undefine()
        b.close()


def test_only_vmlab_domains_are_listed_with_their_runtime(backend: Any) -> None:
    records = [r for r in backend.list_owned() if r.name]
    assert [(r.name, r.kind, r.runtime, r.run_id) for r in records] == [("a1", "vm", "libvirt", "r1")]
    assert records[0].address == "ssh://root@127.0.0.1:2222" and records[0].uri == "test:///default"


def test_destroy_record_is_idempotent(backend: Any) -> None:
    rec = next(r for r in backend.list_owned() if r.name == "a1")
    backend.destroy_record(rec)
    backend.destroy_record(rec)  # already gone: no error
    assert all(r.name != "a1" for r in backend.list_owned())


def test_a_missing_domain_is_one_translated_line(backend: Any) -> None:
    ghost = Record(name="g", kind="vm", run_id="r1", resource="vmlab-r1-ghost", state="")
    with pytest.raises(BackendError) as info:
        backend.attach(ghost)
    assert "vmlab-r1-ghost" in info.value.message and "\n" not in info.value.message


def test_test_driver_offers_no_kvm_domains(backend: Any) -> None:
    assert "kvm" not in backend.domain_types()
