"""The thin layer that speaks libvirt: open, probe, define, look up, destroy, and the one place libvirt
errors become vmlab errors. Everything above it (backend.py, instance.py, measure.py) holds no `libvirtError`.

Opening and probing are host facts and live in `vmlab.host.libvirt` (the doctor uses the same probe);
they are re-exported here so the runtime reaches libvirt through this module alone.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from vmlab.backends.base import NS_URI
from vmlab.backends.libvirt.domain_xml import parse_metadata
from vmlab.errors import BackendError
from vmlab.host.libvirt import LibvirtProbe as LibvirtProbe  # re-exported: the one probe
from vmlab.host.libvirt import LibvirtUnavailable, domain_types, silenced
from vmlab.host.libvirt import connect as _connect
from vmlab.host.libvirt import probe as probe


class DaemonGone(BackendError):
    """libvirtd stopped answering in the middle of an operation (killed, crashed, restarted)."""


# what libvirt's client says when the daemon's socket went away under a live connection
_GONE = ("client socket is closed", "cannot recv data", "cannot write data", "end of file while reading")


def translate(e: Exception, what: str) -> BackendError:
    """The one place libvirt errors become vmlab errors (one line: what failed, libvirt's reason);
    a daemon that went away is DaemonGone, named as such, never mistaken for the guest's fault."""
    msg = e.get_error_message() if hasattr(e, "get_error_message") else None
    lines = str(msg or e).splitlines()
    reason = lines[0] if lines else type(e).__name__
    if "virtlogd-sock" in reason:  # libvirt reaches QEMU's logs and console through virtlogd
        return DaemonGone(
            f"{what}: virtlogd does not answer ({reason})",
            hint="start virtlogd again (make setup, or virtlogd -d as root)",
        )
    if any(g in reason.lower() for g in _GONE):
        return DaemonGone(
            f"{what}: libvirtd stopped answering (it was stopped, killed or restarted)",
            hint="start libvirtd again (make setup, or libvirtd -d as root)",
        )
    return BackendError(f"{what}: {reason}")


def open_connection(uri: str) -> Any:
    """A connection to `uri`; NotAvailable (with the fix, or `--connect`) when it does not answer."""
    try:
        return _connect(uri)
    except LibvirtUnavailable as e:
        fix = f"{e.fix}, or pass --connect URI" if e.fix else "pass --connect URI"
        raise LibvirtUnavailable(uri, e.cause, fix, e.reason) from e


def domain_types_of(conn: Any) -> set[str]:
    libvirt = silenced()
    try:
        return domain_types(conn.getCapabilities())
    except libvirt.libvirtError as e:
        raise translate(e, "reading libvirt's capabilities failed") from e


def define(conn: Any, xml: str, what: str) -> Any:
    """Define (or redefine) a persistent domain from its XML."""
    libvirt = silenced()
    try:
        return conn.defineXML(xml)
    except libvirt.libvirtError as e:
        raise translate(e, what) from e


class PortTaken(BackendError):
    """QEMU could not bind a forwarded host port: another process took it after it was chosen."""


def start(dom: Any, what: str) -> None:
    """Boot a defined domain; PortTaken when the forwarded port was taken meanwhile (choose again)."""
    libvirt = silenced()
    try:
        dom.create()
    except libvirt.libvirtError as e:
        err = translate(e, what)
        if "hostfwd" in str(e) or "host forwarding" in str(e):
            raise PortTaken(err.message) from e
        raise err from e


def lookup(conn: Any, name: str) -> Any | None:
    """The domain called `name`, or None when there is none."""
    libvirt = silenced()
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise translate(e, f"looking up domain {name} failed") from e


def list_domains(conn: Any, where: str) -> list[Any]:
    libvirt = silenced()
    try:
        return list(conn.listAllDomains(0))
    except libvirt.libvirtError as e:
        raise translate(e, f"listing domains on {where} failed") from e


def is_active(dom: Any) -> bool:
    """Whether QEMU runs; a domain that vanished meanwhile is not active. DaemonGone when libvirtd
    itself stopped answering: then nobody knows, and QEMU may well still run."""
    libvirt = silenced()
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError as e:
        err = translate(e, "asking libvirt whether the guest runs")
        if isinstance(err, DaemonGone):
            raise err from e
        return False


def stop_reason(dom: Any) -> str:
    """Why a domain that is not running stopped, as libvirt tells it ("crashed", "destroyed", ...)."""
    libvirt = silenced()
    try:
        state, reason = dom.state()
    except libvirt.libvirtError:
        return ""
    if state != libvirt.VIR_DOMAIN_SHUTOFF:
        return ""
    return {
        libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: "shut down",
        libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: "destroyed",
        libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: "crashed",
        libvirt.VIR_DOMAIN_SHUTOFF_FAILED: "failed to start",
    }.get(reason, "")


def name_of(dom: Any) -> str:
    libvirt = silenced()
    try:
        return str(dom.name())
    except libvirt.libvirtError:
        return ""


def uuid(dom: Any) -> str:
    libvirt = silenced()
    try:
        return str(dom.UUIDString())
    except libvirt.libvirtError:
        return ""


def metadata(dom: Any) -> dict[str, str] | None:
    """vmlab's <metadata> element of a domain; None for a domain vmlab did not create."""
    libvirt = silenced()
    try:
        xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS_URI)
    except libvirt.libvirtError:
        return None
    return parse_metadata(xml)


def domain_type(dom: Any) -> str:
    """`kvm` or `qemu` (TCG), from the live XML."""
    return ET.fromstring(dom.XMLDesc(0)).get("type", "")


def info(dom: Any, what: str) -> tuple[list[int], dict[str, int]]:
    """libvirt's `info()` (state, max KiB, KiB, vCPUs, CPU ns) and its memoryStats."""
    libvirt = silenced()
    try:
        return list(dom.info()), {k: int(v) for k, v in dom.memoryStats().items()}
    except libvirt.libvirtError as e:
        raise translate(e, what) from e


def set_memory(dom: Any, kib: int, what: str) -> None:
    """The balloon's target while the guest runs (VIR_DOMAIN_AFFECT_LIVE): the guest's driver inflates
    or deflates towards it; libvirt refuses it for a domain without a balloon device."""
    libvirt = silenced()
    try:
        dom.setMemoryFlags(int(kib), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as e:
        raise translate(e, what) from e


def monitor(dom: Any, hmp_command: str, what: str) -> str:
    """An HMP command through libvirt's QEMU monitor passthrough (e.g. `info jit` under TCG)."""
    libvirt = silenced()
    import libvirt_qemu  # type: ignore[import-untyped]

    try:
        hmp = libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
        return str(libvirt_qemu.qemuMonitorCommand(dom, hmp_command, hmp))
    except libvirt.libvirtError as e:
        raise translate(e, what) from e


def destroy(dom: Any) -> None:
    """Stop and undefine, tolerating "not running" and "already gone"."""
    libvirt = silenced()
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError as e:
        if e.get_error_code() not in (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN):
            raise translate(e, "stopping the domain failed") from e
    try:
        dom.undefine()
    except libvirt.libvirtError as e:
        if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise translate(e, "undefining the domain failed") from e


def close(conn: Any) -> None:
    """Close, ignoring errors: closing a dead connection must not mask the real error."""
    try:
        conn.close()
    except Exception:  # libvirtError, or anything a dead transport raises
        return
