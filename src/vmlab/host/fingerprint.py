"""The host fingerprint stored with every report, so figures from different machines are not mixed."""

from __future__ import annotations

import os
import platform
import socket
from functools import cache

import psutil

from vmlab.host.cpu import cpu_model, hw_virt
from vmlab.host.tools import ToolSpec
from vmlab.host.versions import DEFAULT_TOOLS, tool_versions
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
def host_info(tools: tuple[str, ...] = DEFAULT_TOOLS, declared: tuple[ToolSpec, ...] = ()) -> HostInfo:
    """This host, with the versions of `tools` (those among `declared`, the lab's own, read as the lab
    says); `accel` stays None here: a run sets it to what its guests really used."""
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
        versions=tool_versions(tools, declared),
    )


# what makes timings of two runs comparable: the machine and its kernel, not its tools or its name's case
_MACHINE = ("hostname", "kernel", "os", "arch", "cpu_model", "cpu_count", "memory_bytes")


def machine_fingerprint() -> tuple[str, dict[str, object]]:
    """sha256 of this machine's identity (`_MACHINE` fields of host_info) and those fields: a baseline
    measured on it (`vmlab grade calibrate`) is used on this machine only."""
    import hashlib
    import json

    info = host_info().model_dump(mode="json")
    fields = {k: info[k] for k in _MACHINE}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return digest, fields
