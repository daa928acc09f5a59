"""The libvirt runtime's adapter against libvirt's own test:///default driver: a real libvirt with
an in-process state, no QEMU and no daemon, so listing, lookup, destroy and error translation run fast."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import import_or_unavailable

from vmlab.backends.base import NS_URI, Record
from vmlab.errors import BackendError

libvirt = import_or_unavailable("libvirt")


def _xml(name: str, vmlab_name: str) -> str:
    return (
        f"<domain type='test'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os>"
        f"<metadata><v:instance xmlns:v='{NS_URI}'><v:name>{vmlab_name}</v:name><v:run_id>r1</v:run_id>"
        "<v:ssh_port>2222</v:ssh_port></v:instance></metadata></domain>"
    )


@pytest.fixture
def backend() -> Iterator[Any]:
    from vmlab.backends.libvirt.backend import LibvirtBackend

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


def test_define_lookup_destroy_through_the_adapter(backend: Any) -> None:
    from vmlab.backends.libvirt import adapter as lv

    dom = lv.define(backend.conn, _xml("vmlab-r1-d1", "d1"), "defining d1")
    assert lv.lookup(backend.conn, "vmlab-r1-d1") is not None
    assert lv.metadata(dom) == {"name": "d1", "run_id": "r1", "ssh_port": "2222"}
    assert lv.uuid(dom) and lv.name_of(dom) == "vmlab-r1-d1" and lv.domain_type(dom) == "test"
    lv.start(dom, "starting d1")
    assert lv.is_active(dom)
    state, max_kib, *_ = lv.info(dom, "info of d1")[0]
    assert max_kib == 65536 and state == libvirt.VIR_DOMAIN_RUNNING
    lv.destroy(dom)
    lv.destroy(dom)  # stopped and undefined already: no error
    assert lv.lookup(backend.conn, "vmlab-r1-d1") is None and not lv.is_active(dom)


def test_a_domain_without_vmlab_metadata_has_none(backend: Any) -> None:
    from vmlab.backends.libvirt import adapter as lv

    foreign = lv.define(
        backend.conn,
        "<domain type='test'><name>foreign</name><memory>65536</memory><os><type>hvm</type></os></domain>",
        "defining foreign",
    )
    try:
        assert lv.metadata(foreign) is None
        assert all(r.resource != "foreign" for r in backend.list_owned())
    finally:
        lv.destroy(foreign)


def test_libvirt_refusals_become_one_line_backend_errors(backend: Any) -> None:
    from vmlab.backends.libvirt import adapter as lv

    with pytest.raises(BackendError, match=r"^defining bad: ") as info:
        lv.define(backend.conn, "<domain type='test'><name>bad</name></domain>", "defining bad")
    assert "\n" not in info.value.message and isinstance(info.value.__cause__, libvirt.libvirtError)


def test_the_probe_reads_what_the_doctor_shows() -> None:
    from vmlab.backends.libvirt.adapter import probe
    from vmlab.host import libvirt as host_libvirt

    assert probe is host_libvirt.probe  # one probe, shared by the runtime and the doctor
    found = probe("test:///default")
    assert found.ok and found.error is None and "test" in found.domain_types
    assert found.libvirt_version.count(".") == 2


def test_a_uri_that_does_not_answer_is_not_available_with_a_fix() -> None:
    from vmlab.backends.libvirt.backend import LibvirtBackend
    from vmlab.errors import NotAvailable
    from vmlab.host.libvirt import probe

    uri = "qemu+tcp://127.0.0.1:1/system"  # nothing listens on port 1
    found = probe(uri)
    assert (found.status, found.fix) == ("refused", "make setup (starts libvirtd)") and found.error
    with pytest.raises(NotAvailable, match="does not answer") as info:
        LibvirtBackend(uri)
    assert info.value.hint and "--connect" in info.value.hint


def test_a_missing_system_daemon_is_named_before_libvirt_is_asked(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmlab.host import libvirt as host_libvirt

    monkeypatch.setattr(host_libvirt, "SYSTEM_SOCKET", tmp_path / "no-sock")
    found = host_libvirt.probe(host_libvirt.SYSTEM)
    assert found.status == "no-daemon" and "libvirtd is not running" in (found.error or "")
    assert host_libvirt.try_open(host_libvirt.SYSTEM) == found.error


def test_where_the_guest_lives_follows_the_uri(tmp_path: Any) -> None:
    """A local URI keeps files and port here; an ssh URI sends them through the libvirt host."""
    from vmlab.backends.libvirt.host import LocalHost, SshHost, host_for

    local = host_for("test:///default")
    assert type(local) is LocalHost and local.sees_processes and local.via == "" and local.ssh_dial is None
    remote = host_for("qemu+ssh://root@libvirt-host:2222/system")  # no connection until first use
    assert isinstance(remote, SshHost) and not remote.sees_processes
    assert remote.via == " via root@libvirt-host:2222" and remote.ssh_dial is not None
    state = tmp_path / "run" / "g1"
    (state / "sub").mkdir(parents=True)
    local.remove_state(state)
    assert not (tmp_path / "run").exists()  # the run dir goes with its last instance
    remote.close()


def test_attach_to_a_listed_domain(backend: Any) -> None:
    rec = next(r for r in backend.list_owned() if r.name == "a1")
    inst = backend.attach(rec)
    assert (inst.name, inst.ssh_port, inst.ladder) == ("a1", 2222, {})
    assert inst.address == "ssh://root@127.0.0.1:2222" and inst.stages[-1] == "first_command"
