"""The Linux `_IOC` arithmetic and the KVM ioctl numbers built from it.

Numbers are computed from `ctypes.sizeof` of the structures in `structs.py`, the way <linux/kvm.h>
computes them with `_IOR/_IOW`, so a wrong structure shows up as a wrong number (tests pin them against
values printed by a C program compiled with the kernel headers of this machine).
"""

from __future__ import annotations

import ctypes

from vmlab.kvmapi import structs

_IOC_NRBITS = 8
_IOC_TYPEBITS = 8
_IOC_SIZEBITS = 14
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS

_IOC_NONE = 0
_IOC_WRITE = 1
_IOC_READ = 2


def _ioc(direction: int, type_: int, nr: int, size: int) -> int:
    if size >= 1 << _IOC_SIZEBITS:
        raise ValueError(f"ioctl argument of {size} bytes does not fit in {_IOC_SIZEBITS} bits")
    return (
        (direction << _IOC_DIRSHIFT)
        | (type_ << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
        | (size << _IOC_SIZESHIFT)
    )


def _io(type_: int, nr: int) -> int:
    return _ioc(_IOC_NONE, type_, nr, 0)


def _ior(type_: int, nr: int, ctype: type[ctypes.Structure]) -> int:
    return _ioc(_IOC_READ, type_, nr, ctypes.sizeof(ctype))


def _iow(type_: int, nr: int, ctype: type[ctypes.Structure]) -> int:
    return _ioc(_IOC_WRITE, type_, nr, ctypes.sizeof(ctype))


KVMIO = 0xAE

# /dev/kvm ("system") ioctls
KVM_GET_API_VERSION = _io(KVMIO, 0x00)
KVM_CREATE_VM = _io(KVMIO, 0x01)
KVM_CHECK_EXTENSION = _io(KVMIO, 0x03)
KVM_GET_VCPU_MMAP_SIZE = _io(KVMIO, 0x04)

# VM ioctls
KVM_CREATE_IRQCHIP = _io(KVMIO, 0x60)
KVM_CREATE_VCPU = _io(KVMIO, 0x41)
KVM_SET_USER_MEMORY_REGION = _iow(KVMIO, 0x46, structs.UserspaceMemoryRegion)
KVM_SET_TSS_ADDR = _io(KVMIO, 0x47)

# vCPU ioctls
KVM_RUN = _io(KVMIO, 0x80)
KVM_GET_REGS = _ior(KVMIO, 0x81, structs.Regs)
KVM_SET_REGS = _iow(KVMIO, 0x82, structs.Regs)
KVM_GET_SREGS = _ior(KVMIO, 0x83, structs.Sregs)
KVM_SET_SREGS = _iow(KVMIO, 0x84, structs.Sregs)
KVM_SET_MP_STATE = _iow(KVMIO, 0x99, structs.MpState)

# VM and vCPU
KVM_GET_STATS_FD = _io(KVMIO, 0xCE)

# capabilities (KVM_CHECK_EXTENSION arguments) and the API version: one table, kept with the host probe
from vmlab.host.kvm import CAPABILITIES as CAPABILITIES  # noqa: E402
from vmlab.host.kvm import KVM_API_VERSION as KVM_API_VERSION  # noqa: E402

KVM_CAP_USER_MEMORY = CAPABILITIES["KVM_CAP_USER_MEMORY"]
KVM_CAP_SET_TSS_ADDR = CAPABILITIES["KVM_CAP_SET_TSS_ADDR"]
KVM_CAP_NR_VCPUS = CAPABILITIES["KVM_CAP_NR_VCPUS"]
KVM_CAP_SYNC_MMU = CAPABILITIES["KVM_CAP_SYNC_MMU"]
KVM_CAP_MAX_VCPUS = CAPABILITIES["KVM_CAP_MAX_VCPUS"]
KVM_CAP_IMMEDIATE_EXIT = CAPABILITIES["KVM_CAP_IMMEDIATE_EXIT"]
KVM_CAP_BINARY_STATS_FD = CAPABILITIES["KVM_CAP_BINARY_STATS_FD"]
