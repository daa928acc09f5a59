"""A small VMM on the raw KVM API (fcntl.ioctl + mmap + ctypes): exits by reason, stats fd, timing.

Layers, each knowing only what it needs: `structs`/`ioctl` (ABI), `exits` (decoding struct kvm_run),
`machine` (Kvm → Vm → Vcpu handles), `devices`/`vmm` (the run loop and device models), `asm`/`programs`
(guest code), `stats` (kernel counters), `lab` (step runners for labs/kvm-api).
"""

from __future__ import annotations

from vmlab.host.kvm import probe  # the /dev/kvm probe lives below the labs, in host/

__all__ = ["probe"]
