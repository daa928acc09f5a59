"""`vmlab doctor`: probe every capability the labs use and say how to fix what is missing.

Probes never raise: each returns a Row. The core works when libvirt and Docker answer, or when the raw
KVM API does (the kvm-api lab needs nothing else).
"""

from __future__ import annotations

import os
import platform
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from vmlab import __version__
from vmlab.host.cpu import full_guest_accel, hw_virt, kvm_module
from vmlab.host.versions import tool_version

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


def _probe_python() -> Row:
    from importlib import metadata

    pkgs: dict[str, str | None] = {}
    for name in ("typer", "rich", "pydantic", "psutil", "paramiko", "docker", "libvirt-python"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = None
    missing = [k for k, v in pkgs.items() if v is None]
    detail = f"Python {platform.python_version()}, vmlab {__version__}"
    if missing:
        return Row("python", "fail", f"{detail}; missing: {', '.join(missing)}", "make setup", pkgs)
    return Row("python", "ok", detail, data=pkgs)


def _probe_kvm() -> Row:
    from vmlab.kvmapi import probe

    info = probe()
    if not info.get("present"):
        return Row("kvm-api", "fail", "/dev/kvm is absent", "load kvm_intel or kvm_amd (modprobe)", info)
    if not info.get("accessible"):
        return Row(
            "kvm-api",
            "fail",
            f"/dev/kvm is not accessible: {info.get('error')}",
            "make setup (chgrp kvm /dev/kvm; chmod 660 /dev/kvm) or add yourself to group kvm",
            info,
        )
    stats = "yes" if info.get("binary_stats_fd") else "no"
    detail = f"API version {info.get('api_version')}, KVM_CAP_BINARY_STATS_FD: {stats}, module {kvm_module()}"
    status: Status = "ok" if info.get("api_version") == 12 else "warn"
    return Row("kvm-api", status, detail, data=info)


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


LIBVIRT_URI = os.environ.get("VMLAB_LIBVIRT_URI", "qemu:///system")


def _probe_libvirt(uri: str = LIBVIRT_URI) -> Row:
    try:
        import libvirt
    except ImportError:
        return Row("libvirt", "fail", "libvirt-python is not installed", "make setup")
    sock = Path("/var/run/libvirt/libvirt-sock")
    if uri == "qemu:///system" and not sock.exists():
        return Row(
            "libvirt", "fail", f"{uri}: libvirtd is not running (no {sock})", "make setup (starts libvirtd)"
        )
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as e:
        return Row("libvirt", "fail", f"{uri}: {e.get_error_message()}", "make setup (starts libvirtd)")
    try:
        lib_v, hv_v = conn.getLibVersion(), conn.getVersion()
        caps = ET.fromstring(conn.getCapabilities())
        types = sorted({d.get("type", "") for d in caps.iter("domain")})
    finally:
        conn.close()

    def fmt(v: int) -> str:
        return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"

    data = {"uri": uri, "libvirt": fmt(lib_v), "qemu": fmt(hv_v), "domain_types": types}
    return Row(
        "libvirt", "ok", f"{uri}: libvirt {fmt(lib_v)}, QEMU {fmt(hv_v)}, domain types {types}", data=data
    )


def _probe_docker() -> Row:
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return Row("docker", "fail", "the docker SDK is not installed", "make setup")
    try:
        client = docker.from_env(timeout=5)
        info = client.info()
        version = client.version()
        client.close()
    except DockerException as e:
        return Row(
            "docker",
            "fail",
            f"daemon not reachable: {str(e).splitlines()[0][:120]}",
            "make setup (starts dockerd)",
        )
    data = {
        "server": version.get("Version"),
        "api": version.get("ApiVersion"),
        "cgroup_version": info.get("CgroupVersion"),
        "cgroup_driver": info.get("CgroupDriver"),
    }
    return Row("docker", "ok", f"Docker {data['server']}, cgroup v{data['cgroup_version']}", data=data)


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


def _probe_tool(name: str, argv: list[str], fix: str, pattern: str = r"(\d+\.\d+(?:\.\d+)?)") -> Row:
    version = tool_version(argv, pattern)
    if shutil.which(argv[0]) is None:
        return Row(name, "warn", f"{argv[0]} not found", fix)
    return Row(name, "ok", f"{argv[0]} {version or '(version unknown)'}", data={"version": version})


PROBES: list[Callable[[], Row]] = [
    _probe_python,
    _probe_kvm,
    _probe_hw_guest,
    _probe_libvirt,
    _probe_docker,
    _probe_kvm_counters,
    lambda: _probe_tool("valgrind", ["valgrind", "--version"], "apt-get install valgrind"),
    lambda: _probe_tool(
        "java", ["java", "-version"], "apt-get install openjdk-17-jdk-headless", r'version "([^"]+)"'
    ),
    lambda: _probe_tool("qemu-user", ["qemu-aarch64", "--version"], "apt-get install qemu-user"),
    lambda: _probe_tool(
        "cross-cc", ["aarch64-linux-gnu-gcc", "--version"], "apt-get install gcc-aarch64-linux-gnu"
    ),
]


def diagnose() -> Diagnosis:
    rows = [probe() for probe in PROBES]
    by = {r.name: r.status for r in rows}
    core = by["python"] == "ok" and (
        (by["libvirt"] == "ok" and by["docker"] == "ok") or by["kvm-api"] == "ok"
    )
    return Diagnosis(rows, core)
