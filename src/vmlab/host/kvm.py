"""What /dev/kvm offers this host, read with two system ioctls; the doctor's and the raw-KVM lab's probe.

It lives here, below the runtimes and labs, so that `vmlab doctor` does not import a lab's VMM to
ask one question. The two ioctls carry no argument structure (`_IO(0xAE, nr)`), so their
numbers need none of kvmapi's ABI arithmetic.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Any

DEVICE = "/dev/kvm"
KVM_API_VERSION = 12  # the stable API since Linux 2.6.22
KVM_GET_API_VERSION = 0xAE00  # _IO(KVMIO, 0x00)
KVM_CHECK_EXTENSION = 0xAE03  # _IO(KVMIO, 0x03)

# KVM_CHECK_EXTENSION arguments shown by the doctor (numbers from <linux/kvm.h>)
CAPABILITIES: dict[str, int] = {
    "KVM_CAP_USER_MEMORY": 3,
    "KVM_CAP_SET_TSS_ADDR": 4,
    "KVM_CAP_NR_VCPUS": 9,
    "KVM_CAP_SYNC_MMU": 16,
    "KVM_CAP_MAX_VCPUS": 66,
    "KVM_CAP_IMMEDIATE_EXIT": 136,
    "KVM_CAP_BINARY_STATS_FD": 203,
}


def probe(path: str = DEVICE) -> dict[str, Any]:
    """What `vmlab doctor` shows about the raw KVM API; never raises.

    Keys: path, present, accessible, error, api_version, api_ok, binary_stats_fd, capabilities.
    """
    info: dict[str, Any] = {
        "path": path,
        "present": os.path.exists(path),
        "accessible": False,
        "error": None,
        "api_version": None,
        "binary_stats_fd": False,
        "capabilities": {},
    }
    if not info["present"]:
        info["error"] = f"{path} does not exist"
        return info
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except PermissionError:
        info["error"] = f"no permission to open {path}"
        return info
    except OSError as e:
        info["error"] = f"cannot open {path}: {os.strerror(e.errno or 0)}"
        return info
    info["accessible"] = True
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION, 0)
        info["api_version"] = version
        info["api_ok"] = version == KVM_API_VERSION
        if version != KVM_API_VERSION:
            info["error"] = f"{path} speaks KVM API version {version}, vmlab needs {KVM_API_VERSION}"
            return info
        caps = {name: _check_extension(fd, cap) for name, cap in CAPABILITIES.items()}
        info["capabilities"] = caps
        info["binary_stats_fd"] = bool(caps["KVM_CAP_BINARY_STATS_FD"])
    except OSError as e:  # a probe reports, it does not fail
        info["error"] = f"KVM_GET_API_VERSION on {path} failed: {os.strerror(e.errno or 0)}"
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return info


def _check_extension(fd: int, cap: int) -> int:
    """0 = absent, >0 = present (some capabilities answer a number, e.g. the vCPU limit)."""
    try:
        return fcntl.ioctl(fd, KVM_CHECK_EXTENSION, cap)
    except OSError:
        return 0
