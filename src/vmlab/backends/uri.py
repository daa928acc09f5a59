"""Which libvirt URI vmlab uses when none is given, following libvirt's own convention.

$VMLAB_LIBVIRT_URI, then $LIBVIRT_DEFAULT_URI, then qemu:///system for root and qemu:///session for
everyone else. A normal user reaches qemu:///system only through polkit over the system bus, which
many hosts (containers, minimal installs) lack; qemu:///session spawns a per-user libvirtd on first
use and runs QEMU as that user. The exception: a user who can open the system URI but not the session
one gets the system URI, with the reason recorded.

As root, libvirtd serves qemu:///session from the system daemon (the same domains in both listings),
so listing both URIs can show a domain twice: callers deduplicate by UUID.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

SYSTEM = "qemu:///system"
SESSION = "qemu:///session"
LOCAL = (SYSTEM, SESSION)

Opener = Callable[[str], str | None]  # URI -> None when it opens, else why not


@dataclass(frozen=True)
class UriChoice:
    uri: str
    reason: str
    source: str  # "VMLAB_LIBVIRT_URI", "LIBVIRT_DEFAULT_URI" or "default"


def try_open(uri: str) -> str | None:
    """None when libvirt at `uri` answers, else its error in one line."""
    try:
        import libvirt
    except ImportError:
        return "libvirt-python is not installed"
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as e:
        return str(e.get_error_message() or e).splitlines()[0]
    with contextlib.suppress(libvirt.libvirtError):
        conn.close()
    return None


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
