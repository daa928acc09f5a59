"""What a normal user gets, decided without daemons: the libvirt URI choice (libvirt's convention),
system tools off a user's PATH, the doctor's group and privilege rows, and listing over several URIs
(libvirt's test driver stands in for two daemons)."""

from __future__ import annotations

import grp
import pwd
from pathlib import Path

import pytest
from tests.conftest import import_or_unavailable

from vmlab.host.libvirt import SESSION, SYSTEM, decide, local_uris


def opener(answers: dict[str, str | None]) -> object:
    calls: list[str] = []

    def open_(uri: str) -> str | None:
        calls.append(uri)
        return answers[uri]

    open_.calls = calls  # type: ignore[attr-defined]
    return open_


def test_env_overrides_come_first_and_probe_nothing() -> None:
    op = opener({})
    got = decide({"VMLAB_LIBVIRT_URI": "test:///default", "LIBVIRT_DEFAULT_URI": SYSTEM}, 1000, op)  # type: ignore[arg-type]
    assert (got.uri, got.source) == ("test:///default", "VMLAB_LIBVIRT_URI")
    got = decide({"LIBVIRT_DEFAULT_URI": SESSION}, 0, op)  # type: ignore[arg-type]
    assert (got.uri, got.source) == (SESSION, "LIBVIRT_DEFAULT_URI")
    assert op.calls == []  # type: ignore[attr-defined]


def test_root_gets_system_without_a_probe() -> None:
    op = opener({})
    assert decide({}, 0, op).uri == SYSTEM  # type: ignore[arg-type]
    assert op.calls == []  # type: ignore[attr-defined]


def test_normal_user_gets_session_when_it_opens() -> None:
    got = decide({}, 1000, opener({SESSION: None}))  # type: ignore[arg-type]
    assert got.uri == SESSION and "not root" in got.reason


def test_normal_user_falls_back_to_system_only_when_session_fails_and_system_opens() -> None:
    got = decide({}, 1000, opener({SESSION: "no daemon", SYSTEM: None}))  # type: ignore[arg-type]
    assert got.uri == SYSTEM and "no daemon" in got.reason
    got = decide({}, 1000, opener({SESSION: "no daemon", SYSTEM: "no polkit"}))  # type: ignore[arg-type]
    assert got.uri == SESSION and "no daemon" in got.reason


def test_local_uris_start_with_the_default_and_cover_both() -> None:
    assert local_uris(SESSION) == [SESSION, SYSTEM]
    assert local_uris(SYSTEM) == [SYSTEM, SESSION]
    assert local_uris("test:///default") == ["test:///default", SYSTEM, SESSION]


def test_system_tool_finds_sbin_tools_off_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from vmlab.paths import SYSTEM_BIN_DIRS, system_tool

    monkeypatch.setenv("PATH", str(tmp_path))  # a student's PATH without any sbin
    in_sbin = next((d for d in SYSTEM_BIN_DIRS if Path(d, "depmod").exists()), None)
    if in_sbin is None:
        pytest.skip("depmod is not installed in an sbin directory here")
    assert system_tool("depmod") == str(Path(in_sbin, "depmod"))
    assert system_tool("surely-not-a-tool-vmlab") is None


def _a_group_member() -> tuple[str, int, grp.struct_group] | None:
    """A user listed as a member of a lab group (the running user's own groups decide `current`)."""
    for name in ("kvm", "libvirt", "docker"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        for user in g.gr_mem:
            try:
                return user, pwd.getpwnam(user).pw_uid, g
            except KeyError:
                continue
    return None


def test_groups_row_root_and_stale_login() -> None:
    from vmlab.host.doctor import _probe_groups

    assert _probe_groups(euid=0).status == "ok"
    found = _a_group_member()
    if found is None:
        pytest.skip("no user is listed in group kvm, libvirt or docker here")
    user, uid, g = found
    stale = _probe_groups(euid=uid, user=user, current=set())  # member in /etc/group, not in this login
    assert stale.status == "warn"
    assert g.gr_name in stale.data["needs_new_login"] and "log in again" in stale.fix.replace(
        "out and in", "in"
    )
    fresh = _probe_groups(euid=uid, user=user, current={g.gr_gid})
    assert g.gr_name in fresh.data["member"]


def test_privileges_row_names_every_skip_with_a_fix() -> None:
    from vmlab.host.doctor import _probe_privileges

    assert _probe_privileges(euid=0).status == "ok"
    row = _probe_privileges(euid=1000)
    assert row.status == "warn" and row.fix
    assert set(row.data["skipped"]) >= {"container syscalls", "KVM exit counters", "KSM settings"}


def test_python_row_warns_not_fails_without_the_vm_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from vmlab.host import doctor

    real = metadata.version

    def version(name: str) -> str:
        if name in doctor.VM_PACKAGES:
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    row = doctor._probe_python()
    assert row.status == "warn" and "only the labs without guests or containers" in row.detail
    assert "[vm]" in row.fix


def test_listing_covers_every_uri_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two URIs served by one daemon list its domains once; a URI that does not open hides nothing.

    libvirt's test:///default keeps one state per process, so it stands in for root's system daemon
    answering both qemu:///system and qemu:///session."""
    libvirt = import_or_unavailable("libvirt")
    from vmlab.backends import lifecycle
    from vmlab.backends.base import NS_URI
    from vmlab.host import libvirt as host_libvirt

    monkeypatch.setattr(host_libvirt, "LOCAL", ("test:///default", "test:///default", "nosuch:///x"))
    monkeypatch.delenv("VMLAB_LIBVIRT_URI", raising=False)
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "test:///default")
    conn = libvirt.open("test:///default")
    xml = (
        "<domain type='test'><name>vmlab-r1-u1</name><memory>65536</memory><os><type>hvm</type></os>"
        f"<metadata><v:instance xmlns:v='{NS_URI}'><v:name>u1</v:name><v:run_id>r1</v:run_id>"
        "</v:instance></metadata></domain>"
    )
    dom = conn.defineXML(xml)
    try:
        listing = lifecycle.list_all(kinds=("vm",))
        assert [(r.name, r.uri) for r in listing.records] == [("u1", "test:///default")]
        assert "vm" not in listing.unavailable
    finally:
        dom.undefine()
        conn.close()
