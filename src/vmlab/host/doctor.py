"""`vmlab doctor`: probe every capability the labs use and say how to fix what is missing.

Probes never raise: each returns a Row. The core works when libvirt and Docker answer, or when the raw
KVM API does (a lab driving /dev/kvm itself needs nothing else). For a normal user it also says which
groups are missing, which libvirt URI is used and why, and which measurements will be recorded as
skipped. The labs' own tools are rows too, one per tool the labs declare in lab.toml (`tool_row`).
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from vmlab import __version__
from vmlab.host.cpu import full_guest_accel, hw_virt, kvm_module
from vmlab.host.tools import ToolSpec
from vmlab.host.versions import declared_version
from vmlab.runtime_registry import VM_EXTRA_FIX

Status = Literal["ok", "warn", "fail"]


@dataclass
class Row:
    name: str
    status: Status
    detail: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Diagnosis:
    rows: list[Row]
    core_ok: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "vmlab_version": __version__,
            "core_ok": self.core_ok,
            "checks": [asdict(r) for r in self.rows],
        }


CORE_PACKAGES = ("typer", "rich", "pydantic", "psutil", "paramiko")
# The `vm` extra: only the labs that start guests or containers import these, so a machine without
# libvirt's headers (macOS, WSL) still runs the pure-Python labs.
VM_PACKAGES = ("docker", "libvirt-python")


def _probe_python() -> Row:
    from importlib import metadata

    pkgs: dict[str, str | None] = {}
    for name in (*CORE_PACKAGES, *VM_PACKAGES):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = None
    missing_core = [k for k in CORE_PACKAGES if pkgs[k] is None]
    missing_vm = [k for k in VM_PACKAGES if pkgs[k] is None]
    detail = f"Python {platform.python_version()}, vmlab {__version__}"
    if missing_core:
        return Row("python", "fail", f"{detail}; missing: {', '.join(missing_core)}", "make setup", pkgs)
    if missing_vm:
        return Row(
            "python",
            "warn",
            f"{detail}; without {', '.join(missing_vm)} only the labs without guests or containers run",
            VM_EXTRA_FIX,
            pkgs,
        )
    return Row("python", "ok", detail, data=pkgs)


LAB_GROUPS = {
    "kvm": "/dev/kvm (hardware-accelerated guests, the raw KVM API)",
    "libvirt": "libvirt's system daemon",
    "docker": "the Docker daemon's socket",
}


def _probe_groups(euid: int | None = None, user: str | None = None, current: set[int] | None = None) -> Row:
    """A normal user needs groups kvm, libvirt and docker; a new membership applies after a new login."""
    import grp
    import pwd

    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return Row("groups", "ok", "root: no group membership needed", data={"root": True})
    user = user or pwd.getpwuid(euid).pw_name
    current = set(os.getgroups()) if current is None else current
    primary = pwd.getpwnam(user).pw_gid
    have, relogin, missing, absent = [], [], [], []
    for name in LAB_GROUPS:
        try:
            g = grp.getgrnam(name)
        except KeyError:
            absent.append(name)
            continue
        if g.gr_gid in current:
            have.append(name)
        elif user in g.gr_mem or g.gr_gid == primary:
            relogin.append(name)
        else:
            missing.append(name)
    data = {"user": user, "member": have, "needs_new_login": relogin, "missing": missing, "absent": absent}
    parts = [f"{user} in {', '.join(have) or 'none of the lab groups'}"]
    fixes = []
    if relogin:
        parts.append(f"added to {', '.join(relogin)} but this login predates it")
        fixes.append("log out and in again (or `newgrp GROUP` in this shell)")
    if missing:
        parts.append("not in " + "; ".join(f"{g} ({LAB_GROUPS[g]})" for g in missing))
        fixes.append(f"sudo usermod -aG {','.join(missing)} {user} (make setup does it), then log in again")
    if absent:
        parts.append(f"no group {', '.join(absent)} on this host (its package is not installed)")
        fixes.append("make setup")
    status: Status = "ok" if not (relogin or missing) else "warn"
    return Row("groups", status, "; ".join(parts), "; ".join(fixes), data)


def probe_kvm() -> Row:
    from vmlab.host.kvm import probe

    info = probe()
    if not info.get("present"):
        return Row("kvm", "fail", "/dev/kvm is absent", "load kvm_intel or kvm_amd (modprobe)", info)
    if not info.get("accessible"):
        return Row(
            "kvm",
            "fail",
            f"/dev/kvm is not accessible: {info.get('error')}",
            "make setup (chgrp kvm /dev/kvm; chmod 660 /dev/kvm) or add yourself to group kvm",
            info,
        )
    stats = "yes" if info.get("binary_stats_fd") else "no"
    detail = f"API version {info.get('api_version')}, KVM_CAP_BINARY_STATS_FD: {stats}, module {kvm_module()}"
    status: Status = "ok" if info.get("api_version") == 12 else "warn"
    return Row("kvm", status, detail, data=info)


def _probe_hw_guest() -> Row:
    accel, reason = full_guest_accel("auto")
    data = {"hw_virt": hw_virt(), "accel": accel, "reason": reason, "kvm_module": kvm_module()}
    if accel == "kvm":
        return Row("full-guest-accel", "ok", f"KVM: {reason}", data=data)
    return Row(
        "full-guest-accel",
        "warn",
        f"TCG will be used: {reason}",
        "use a host with VT-x/AMD-V enabled in firmware for hardware-assisted guests",
        data,
    )


def _probe_kvm_counters() -> Row:
    debugfs = Path("/sys/kernel/debug/kvm")
    tracefs = next(
        (
            p
            for p in (Path("/sys/kernel/tracing/events/kvm"), Path("/sys/kernel/debug/tracing/events/kvm"))
            if p.exists()
        ),
        None,
    )
    perf = shutil.which("perf")
    data = {"debugfs_kvm": debugfs.exists(), "tracepoints": str(tracefs) if tracefs else None, "perf": perf}
    parts = [
        f"debugfs kvm stats: {'yes' if debugfs.exists() else 'not mounted'}",
        f"kvm tracepoints: {'yes' if tracefs else 'not visible'}",
        f"perf: {'yes' if perf else 'no'}",
    ]
    ok = debugfs.exists() or bool(tracefs and perf)
    fixes = []
    if not debugfs.exists():
        fixes.append("mount -t debugfs none /sys/kernel/debug")
    if not perf:
        fixes.append("apt-get install linux-perf")
    fix = "" if ok else "; ".join(fixes)
    return Row("kvm-counters", "ok" if ok else "warn", ", ".join(parts), fix, data)


def _probe_privileges(euid: int | None = None) -> Row:
    """What a normal user's runs record as skipped (never abort on), each with its fix."""
    if (os.geteuid() if euid is None else euid) == 0:
        return Row("privileges", "ok", "root: every measurement is available", data={"skipped": []})
    skipped = {
        "container syscalls": "counted by strace inside the container (the host may not ptrace "
        "root's processes); the idle phase only where ptrace_scope allows",
        "KVM exit counters": "debugfs (/sys/kernel/debug/kvm) is root-only: traps of a KVM guest are skipped",
        "perf tracepoints": "kvm:* tracepoints need root (or kernel.perf_event_paranoid=-1)",
        "KSM settings": "/sys/kernel/mm/ksm is writable by root only: KSM experiments are skipped",
    }
    detail = "not root: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
    fix = (
        "nothing needed for the labs; for these numbers run on a host where you are root "
        "(sudo mount -t debugfs none /sys/kernel/debug gives root the KVM counters)"
    )
    return Row("privileges", "warn", detail, fix, {"skipped": list(skipped)})


def _probe_build_tools() -> Row:
    """Image builds run as you: the tools may sit in /usr/sbin, off a normal user's PATH."""
    from vmlab.paths import system_tool

    tools = {t: system_tool(t) for t in ("apt-get", "dpkg-deb", "depmod", "ldd")}
    missing = [t for t, p in tools.items() if p is None]
    detail = ", ".join(f"{t}: {p or 'missing'}" for t, p in tools.items())
    if missing:
        return Row("image-build", "warn", detail, "make setup (apt-get install kmod)", tools)
    return Row("image-build", "ok", detail, data=tools)


# The releases `make test` (Debian 12) and `make portability` (Debian 13) run the kit on.
TESTED_RELEASES = {("debian", "12"), ("debian", "13")}


def probe_distro(
    os_release_text: str | None = None,
    choices: Any = None,
    installed: Callable[[str], bool] | None = None,
    which: Callable[[str], str | None] | None = None,
) -> Row:
    """What this release offers and what set-up chose from it (src/vmlab/host/distro.py), and the
    pieces still missing, each with its fix. Inputs are injectable: the unit test fakes an Ubuntu 24.04
    host, whose package lists are not reachable from the machines the kit is tested on."""
    from vmlab.host import distro

    if os_release_text is None:
        try:
            os_release_text = Path("/etc/os-release").read_text()
        except OSError:
            os_release_text = ""
    info = distro.os_release(os_release_text)
    c = choices if choices is not None else distro.resolve()
    have = installed or _dpkg_installed
    find = which or shutil.which
    name = info.get("PRETTY_NAME") or "unknown release (no /etc/os-release)"
    tested = (info.get("ID", ""), info.get("VERSION_ID", "")) in TESTED_RELEASES
    chose = (
        f"JDK {c.jdk}, Docker {' + '.join(c.docker)}, kernel {c.kernel_meta or 'none'}, "
        f"kernel source {c.linux_source or 'none'}, runsc {'in the archive' if c.runsc else 'not in it'}"
    )
    missing: list[tuple[str, str]] = []
    if find("docker") is None:
        missing.append(("the docker command", f"apt-get install {c.docker[-1]}"))
    if find("java") is None:
        missing.append(("a JDK", f"apt-get install {c.jdk}"))
    for pkg, why in (("python3-venv", "make's venv"), ("python3-dev", "Python.h for libvirt-python")):
        if not have(pkg):
            missing.append((f"{pkg} ({why})", f"apt-get install {pkg}"))
    if find("runsc") is None:
        fix = (
            "apt-get install runsc" if c.runsc else "add gVisor's apt repository, then apt-get install runsc"
        )
        missing.append(("runsc (the sandbox kind)", fix))
    if c.kernel_meta != "linux-image-amd64":
        missing.append(
            (
                "linux-image-amd64 (the tiny image's kernel; Ubuntu's linux-image-generic is signed, "
                "its modules in linux-modules-*)",
                "build the images on Debian 12/13 (docs/host-facts.md)",
            )
        )
    data = {
        "id": info.get("ID"),
        "version_id": info.get("VERSION_ID"),
        "tested": tested,
        "chosen": {
            "jdk": c.jdk,
            "docker": c.docker,
            "kernel_meta": c.kernel_meta,
            "linux_source": c.linux_source,
            "runsc_in_archive": c.runsc,
        },
        "missing": [m for m, _ in missing],
        "notes": list(c.notes),
    }
    detail = f"{name} ({'tested' if tested else 'not a tested release'}): set-up chooses {chose}"
    if missing:
        detail += "; missing: " + "; ".join(m for m, _ in missing)
    status: Status = "ok" if tested and not missing else "warn"
    return Row("distro", status, detail, "; ".join(f for _, f in missing), data)


def _dpkg_installed(package: str) -> bool:
    from vmlab.host.distro import run_quiet

    return "install ok installed" in run_quiet(["dpkg-query", "-W", "-f=${Status}", package])


def tool_row(tool: ToolSpec) -> Row:
    """A lab's tool: found and its version, or a warning naming its package; a release outside what
    the lab's parsers know (the lab's `note`) is said in one line."""
    if tool.path() is None:
        return Row(tool.name, "warn", f"{tool.program} not found", tool.install_hint())
    version = declared_version(tool)
    detail = f"{tool.program} {version or '(version unknown)'}"
    note = tool.version_note(version) if version and version != "present" else None
    if note:
        return Row(tool.name, "warn", f"{detail}; {note}", "make setup", {"version": version})
    return Row(tool.name, "ok", detail, data={"version": version})


def runtime_rows() -> list[Row]:
    """Each runtime's health, named as a step `requires` it (docker, sandbox, libvirt, plug-ins)."""
    from vmlab.runtime_registry import probe, registry

    rows = []
    for name, info in registry().items():
        h = probe(name)
        detail = h.detail if info.requirement_name == name else f"{name}: {h.detail}"
        rows.append(Row(info.requirement_name, h.status, detail, h.fix, {"runtime": name, **h.data}))
    return rows


PROBES: list[Callable[[], Row | list[Row]]] = [
    _probe_python,
    probe_distro,
    _probe_groups,
    probe_kvm,
    _probe_hw_guest,
    lambda: runtime_rows(),  # one row per runtime of the registry, from the runtime's own probe
    _probe_privileges,
    _probe_kvm_counters,
    _probe_build_tools,
]


def _rows(found: Row | list[Row]) -> list[Row]:
    return found if isinstance(found, list) else [found]


def diagnose(tools: Sequence[ToolSpec] = ()) -> Diagnosis:
    """Every probe's rows, then one row per lab tool in `tools` (the CLI passes every lab's,
    vmlab.labs.tools.every_lab_tool; this layer knows no lab)."""
    rows = [row for probe in PROBES for row in _rows(probe())]
    rows += [tool_row(t) for t in tools]
    by = {r.name: r.status for r in rows}
    core = by["python"] != "fail" and ((by["libvirt"] == "ok" and by["docker"] == "ok") or by["kvm"] == "ok")
    return Diagnosis(rows, core)
