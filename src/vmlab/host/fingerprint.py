"""The host fingerprint stored with every report, so figures from different machines are not mixed."""

from __future__ import annotations

import os
import platform
import socket
from functools import cache

import psutil

from vmlab.host.cpu import cpu_model, full_guest_accel, hw_virt
from vmlab.host.versions import tool_versions
from vmlab.report.model import HostInfo


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


@cache
def host_info() -> HostInfo:
    accel, reason = full_guest_accel("auto")
    return HostInfo(
        hostname=socket.gethostname(),
        kernel=platform.release(),
        os=_os_name(),
        arch=platform.machine(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        memory_bytes=psutil.virtual_memory().total,
        python=platform.python_version(),
        hw_virt=hw_virt(),
        accel=accel,
        accel_reason=reason,
        versions=tool_versions(),
    )
