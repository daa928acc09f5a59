"""Who may read what an image holds.

libvirt's QEMU (qemu:///system) runs as user libvirt-qemu and must read kernels and initramfs images,
so the cache cannot be root-only (docs/host-facts.md). But the initramfs and the container rootfs carry the
guest's SSH host key: world-readable, any local user could impersonate the pinned guest. So secrets
go to root:<QEMU's group> 0640 when we are root, and stay 0600 for a normal user (qemu:///session
runs QEMU as that user). A kernel holds no secret and stays 0644.
"""

from __future__ import annotations

import grp
import os
from pathlib import Path

QEMU_GROUPS = ("libvirt-qemu", "qemu", "kvm")  # Debian's libvirt, Fedora's, then the device group


def qemu_gid() -> int | None:
    for name in QEMU_GROUPS:
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            continue
    return None


def share_with_qemu(path: Path, *, secret: bool) -> None:
    """Make `path` readable by the QEMU process that boots it, and secrets by nobody else."""
    if not secret:
        os.chmod(path, 0o644)
        return
    gid = qemu_gid() if os.geteuid() == 0 else None
    if gid is None:
        # a normal user's own QEMU reads it as its owner; root without a QEMU group: nobody else needs it
        os.chmod(path, 0o600 if os.geteuid() != 0 else 0o644)
        return
    os.chown(path, 0, gid)
    os.chmod(path, 0o640)
