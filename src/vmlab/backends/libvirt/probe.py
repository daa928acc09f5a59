"""The libvirt runtime's health (what `vmlab doctor` shows and `requires = ["libvirt"]` checks): the URI
vmlab will use and why, whether it answers, and, for a normal user on the session URI, whether a
guest's monitor socket path fits a Unix socket address. Never raises."""

from __future__ import annotations

import os
from pathlib import Path

from vmlab.runtime_registry import VM_EXTRA_FIX, Health

UNIX_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL


def probe(uri: str | None = None) -> Health:
    """The system URI missing is no failure for a normal user whose session URI serves."""
    from vmlab.host.libvirt import SESSION, choose
    from vmlab.host.libvirt import probe as probe_uri

    if uri is None:
        choice = choose()
        uri, why = choice.uri, choice.reason
    else:
        why = "given"
    base = {"uri": uri, "uri_reason": why}
    found = probe_uri(uri)
    if found.status == "no-binding":
        return Health("fail", "libvirt-python is not installed", VM_EXTRA_FIX)
    if not found.ok:
        return Health("fail", f"{uri} ({why}): {found.error}", found.fix, base)
    types = list(found.domain_types)
    lib_v, hv_v = found.libvirt_version, found.qemu_version
    data = {**base, "libvirt": lib_v, "qemu": hv_v, "domain_types": types}
    detail = f"{uri} ({why}): libvirt {lib_v}, QEMU {hv_v}, domain types {types}"
    if uri == SESSION and os.geteuid() != 0:
        sock = session_monitor_socket()
        if len(str(sock)) > UNIX_PATH_MAX:
            return Health(
                "warn",
                f"{detail}; but guests cannot start: their monitor socket {sock} is longer than "
                f"{UNIX_PATH_MAX} bytes",
                "use a user whose home directory path is shorter",
                data,
            )
    return Health("ok", detail, data=data)


def session_monitor_socket() -> Path:
    """Where libvirt's session daemon puts a vmlab guest's QEMU monitor socket (the longest case:
    a domain id of 3 digits and the 20 characters of the name libvirt keeps)."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "libvirt" / "qemu" / "lib" / "domain-999-vmlab-20261126-15261" / "monitor.sock"
