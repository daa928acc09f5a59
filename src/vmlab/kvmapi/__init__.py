"""A small VMM on the raw KVM API (fcntl.ioctl + mmap + ctypes): exits by reason, stats fd, timing.

Layers, each knowing only what it needs: `structs`/`ioctl` (ABI), `exits` (decoding struct kvm_run),
`machine` (Kvm → Vm → Vcpu handles), `devices`/`vmm` (the run loop and device models), `asm`/`programs`
(guest code), `stats` (kernel counters), `lab` (step runners for labs/kvm-api).
"""

from __future__ import annotations

from typing import Any

__all__ = ["probe"]


def probe(path: str = "/dev/kvm") -> dict[str, Any]:
    """What `vmlab doctor` shows about the raw KVM API; never raises.

    Keys: present, accessible, error, api_version, binary_stats_fd, capabilities.
    """
    import os

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
        from vmlab.kvmapi import ioctl
        from vmlab.kvmapi.machine import Kvm

        with Kvm(path) as kvm:
            info["accessible"] = True
            info["api_version"] = kvm.api_version
            caps = kvm.capabilities()
            info["capabilities"] = caps
            info["binary_stats_fd"] = bool(caps.get("KVM_CAP_BINARY_STATS_FD"))
            info["api_ok"] = kvm.api_version == ioctl.KVM_API_VERSION
    except Exception as e:  # a probe reports, it does not fail
        info["error"] = getattr(e, "message", None) or str(e)
        if "API version" in str(info["error"]):
            info["accessible"] = True
    return info
