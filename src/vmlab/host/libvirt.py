"""This host's libvirt: which URI vmlab uses when none is given, and whether it answers (one probe).

The URI follows libvirt's own convention: $VMLAB_LIBVIRT_URI, then $LIBVIRT_DEFAULT_URI, then
qemu:///system for root and qemu:///session for everyone else. A normal user reaches qemu:///system
only through polkit over the system bus, which many hosts (containers, minimal installs) lack;
qemu:///session spawns a per-user libvirtd on first use and runs QEMU as that user. The exception: a
user who can open the system URI but not the session one gets the system URI, with the reason recorded.

As root, libvirtd serves qemu:///session from the system daemon (the same domains in both listings),
so listing both URIs can show a domain twice: callers deduplicate by UUID.

`connect` is the one way vmlab opens libvirt (the libvirt runtime's adapter calls it) and `probe`, built
on it, is the one check of it (`vmlab doctor`, a lab's `requires = ["libvirt"]`, the URI choice). It sits
in host/, below the runtimes, so the doctor needs no runtime to ask.
"""

from __future__ import annotations

import contextlib
import functools
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vmlab.errors import NotAvailable

SYSTEM = "qemu:///system"
SESSION = "qemu:///session"
LOCAL = (SYSTEM, SESSION)
SYSTEM_SOCKET = Path("/var/run/libvirt/libvirt-sock")

Opener = Callable[[str], str | None]  # URI -> None when it opens, else why not


class LibvirtUnavailable(NotAvailable):
    """libvirt at `uri` does not answer; `cause` says why in one line, the hint how to fix it."""

    def __init__(self, uri: str, cause: str, fix: str, reason: ProbeStatus) -> None:
        super().__init__(f"libvirt at {uri} does not answer: {cause}", hint=fix)
        self.uri, self.cause, self.fix, self.reason = uri, cause, fix, reason


ProbeStatus = Literal["ok", "no-binding", "no-daemon", "refused"]


def start_fix(uri: str) -> str:
    if uri == SESSION:
        return "make setup (installs libvirt-daemon-system; the session daemon starts on first use)"
    return "make setup (starts libvirtd)"


def silenced() -> Any:
    """The libvirt module with its default error handler (which prints to stderr) switched off."""
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def connect(uri: str) -> Any:
    """An open libvirt connection to `uri`, or LibvirtUnavailable saying why and how to fix it.

    The system daemon's socket is looked at first: libvirt's own error for a missing daemon names
    neither the daemon nor the fix."""
    try:
        libvirt = silenced()
    except ImportError as e:
        raise LibvirtUnavailable(uri, "libvirt-python is not installed", "", "no-binding") from e
    if uri == SYSTEM and not SYSTEM_SOCKET.exists():
        raise LibvirtUnavailable(
            uri, f"libvirtd is not running (no {SYSTEM_SOCKET})", start_fix(uri), "no-daemon"
        )
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as e:
        cause = str(e.get_error_message() or e).splitlines()[0]
        raise LibvirtUnavailable(uri, cause, start_fix(uri), "refused") from e


@dataclass(frozen=True)
class LibvirtProbe:
    """What one look at libvirt found; `error` is None when it answers."""

    uri: str
    status: ProbeStatus
    error: str | None = None
    fix: str = ""
    libvirt_version: str = ""
    qemu_version: str = ""
    domain_types: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def probe(uri: str) -> LibvirtProbe:
    """Open `uri`, read the versions and the domain types it offers, close; never raises."""
    try:
        conn = connect(uri)
    except LibvirtUnavailable as e:
        return LibvirtProbe(uri, e.reason, e.cause, e.fix)
    import libvirt

    try:
        lib_v, hv_v = conn.getLibVersion(), conn.getVersion()
        types = tuple(sorted(domain_types(conn.getCapabilities())))
    except libvirt.libvirtError as e:
        return LibvirtProbe(uri, "refused", str(e.get_error_message() or e).splitlines()[0], start_fix(uri))
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()
    return LibvirtProbe(uri, "ok", None, "", _version(lib_v), _version(hv_v), types)


def domain_types(capabilities_xml: str) -> set[str]:
    """The domain types (`kvm`, `qemu`, `test`) a hypervisor's capabilities XML offers."""
    return {d.get("type", "") for d in ET.fromstring(capabilities_xml).iter("domain")}


def _version(v: int) -> str:
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"


def try_open(uri: str) -> str | None:
    """None when libvirt at `uri` answers, else why not in one line (the URI choice's opener)."""
    return probe(uri).error


# --- which URI -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UriChoice:
    uri: str
    reason: str
    source: str  # "VMLAB_LIBVIRT_URI", "LIBVIRT_DEFAULT_URI" or "default"


def decide(env: Mapping[str, str], euid: int, opener: Opener = try_open) -> UriChoice:
    """The choice as a pure function of the environment, the user and what opens (tested directly)."""
    for var in ("VMLAB_LIBVIRT_URI", "LIBVIRT_DEFAULT_URI"):
        if env.get(var):
            return UriChoice(env[var], f"${var} is set", var)
    if euid == 0:
        return UriChoice(SYSTEM, "libvirt's default for root", "default")
    session_err = opener(SESSION)
    if session_err is None:
        return UriChoice(
            SESSION, "not root: libvirt's default for a normal user; QEMU runs as you", "default"
        )
    system_err = opener(SYSTEM)
    if system_err is None:
        return UriChoice(
            SYSTEM, f"not root, but {SESSION} does not open ({session_err}) and {SYSTEM} does", "default"
        )
    return UriChoice(
        SESSION, f"not root: libvirt's default for a normal user; it does not open: {session_err}", "default"
    )


def choose() -> UriChoice:
    """This process's default URI; the probe runs once per environment (opening qemu:///session may
    spawn the per-user daemon)."""
    return _choose(
        os.environ.get("VMLAB_LIBVIRT_URI", ""), os.environ.get("LIBVIRT_DEFAULT_URI", ""), os.geteuid()
    )


@functools.cache
def _choose(vmlab_uri: str, libvirt_uri: str, euid: int) -> UriChoice:
    env = {"VMLAB_LIBVIRT_URI": vmlab_uri, "LIBVIRT_DEFAULT_URI": libvirt_uri}
    return decide(env, euid)


def default_uri() -> str:
    return choose().uri


def local_uris(first: str) -> list[str]:
    """`first`, then every other local QEMU URI: where `ls` and `down --all` look when not told."""
    return [first, *(u for u in LOCAL if u != first)]
