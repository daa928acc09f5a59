"""`Kvm` → `Vm` → `Vcpu`: context managers that mirror the fd tree of the KVM API.

/dev/kvm gives a system fd; KVM_CREATE_VM gives a VM fd; KVM_CREATE_VCPU gives a vCPU fd whose mmap is
the shared `struct kvm_run`. Each handle releases what it created (mappings first, then fds) exactly
once, in reverse order, also when an exception or Ctrl-C unwinds through it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
from types import TracebackType
from typing import Self

from vmlab.errors import BackendError, NotAvailable
from vmlab.kvmapi import ioctl
from vmlab.kvmapi.exits import ExitReason
from vmlab.kvmapi.structs import (
    KVM_MP_STATE_RUNNABLE,
    KVM_RUN_IMMEDIATE_EXIT_OFFSET,
    MpState,
    Regs,
    Sregs,
    UserspaceMemoryRegion,
)

DEFAULT_DEVICE = "/dev/kvm"


class _Handle:
    """Owns an fd and an ExitStack of things to release; close() is idempotent."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._stack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _own_fd(self, fd: int) -> int:
        self._stack.callback(_close_fd, fd)
        return fd


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _ioctl(fd: int, request: int, arg: int | ctypes.Structure = 0, *, what: str) -> int:
    """One ioctl with errors translated to BackendError naming the call."""
    try:
        if isinstance(arg, ctypes.Structure):
            return fcntl.ioctl(fd, request, arg, True)  # type: ignore[no-any-return]
        return fcntl.ioctl(fd, request, arg)
    except InterruptedError:
        raise
    except OSError as e:
        raise BackendError(f"{what} failed: {os.strerror(e.errno or 0)} (errno {e.errno})") from None


def open_device(path: str = DEFAULT_DEVICE) -> int:
    """Open /dev/kvm, turning the two usual failures into a NotAvailable with the fix."""
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotAvailable(
            f"{path} does not exist: this host exposes no KVM",
            hint="load kvm_intel or kvm_amd (modprobe) or use a host/VM with nested virtualization",
        ) from None
    except PermissionError:
        raise NotAvailable(
            f"no permission to open {path}",
            hint=f"chgrp kvm {path}; chmod 660 {path}; and add your user to group kvm (or run as root)",
        ) from None
    except OSError as e:
        raise NotAvailable(f"cannot open {path}: {os.strerror(e.errno or 0)}") from None


class Kvm(_Handle):
    """The system fd: API version, capabilities, VM creation."""

    def __init__(self, path: str = DEFAULT_DEVICE) -> None:
        super().__init__()
        self.path = path
        self.fd = self._own_fd(open_device(path))
        try:
            self.api_version = _ioctl(self.fd, ioctl.KVM_GET_API_VERSION, what="KVM_GET_API_VERSION")
            if self.api_version != ioctl.KVM_API_VERSION:
                raise NotAvailable(
                    f"{path} speaks KVM API version {self.api_version}, this VMM needs "
                    f"{ioctl.KVM_API_VERSION}",
                    hint="use a Linux kernel >= 2.6.22 with the stable KVM API",
                )
            self.vcpu_mmap_size = _ioctl(self.fd, ioctl.KVM_GET_VCPU_MMAP_SIZE, what="KVM_GET_VCPU_MMAP_SIZE")
        except BaseException:
            self.close()
            raise

    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION: 0 = absent, >0 = present (some caps return a number, e.g. max vCPUs)."""
        try:
            return fcntl.ioctl(self.fd, ioctl.KVM_CHECK_EXTENSION, cap)
        except OSError:
            return 0

    def capabilities(self) -> dict[str, int]:
        return {name: self.check_extension(cap) for name, cap in ioctl.CAPABILITIES.items()}

    def create_vm(self) -> Vm:
        return Vm(self)


class Vm(_Handle):
    """A VM fd with its guest-memory slots."""

    def __init__(self, kvm: Kvm) -> None:
        super().__init__()
        self.kvm = kvm
        self.fd = self._own_fd(_ioctl(kvm.fd, ioctl.KVM_CREATE_VM, 0, what="KVM_CREATE_VM"))
        self._slots = 0

    def set_tss_addr(self, addr: int = 0xFFFBD000) -> bool:
        """Intel needs a TSS area for real mode (QEMU uses this address); other hosts may refuse."""
        # fcntl.ioctl passes a C int; this argument is an unsigned long above 2**31, so use libc.
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.ioctl(self.fd, ctypes.c_ulong(ioctl.KVM_SET_TSS_ADDR), ctypes.c_ulong(addr))) == 0

    def add_memory(self, guest_phys_addr: int, size: int) -> mmap.mmap:
        """Anonymous host memory mapped into the guest at guest_phys_addr (page aligned)."""
        if guest_phys_addr % mmap.PAGESIZE or size % mmap.PAGESIZE or size <= 0:
            raise ValueError("guest memory must be page aligned and non-empty")
        mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._stack.callback(mem.close)
        region = UserspaceMemoryRegion(
            slot=self._slots,
            flags=0,
            guest_phys_addr=guest_phys_addr,
            memory_size=size,
            userspace_addr=_address_of(mem),
        )
        _ioctl(self.fd, ioctl.KVM_SET_USER_MEMORY_REGION, region, what="KVM_SET_USER_MEMORY_REGION")
        self._slots += 1
        return mem

    def create_irqchip(self) -> None:
        """The in-kernel PIC, IOAPIC and one local APIC per vCPU (before any vCPU exists): HLT then
        waits in the kernel (halt polling) and IPIs go vCPU to vCPU without user space."""
        _ioctl(self.fd, ioctl.KVM_CREATE_IRQCHIP, 0, what="KVM_CREATE_IRQCHIP")

    def create_vcpu(self, index: int = 0) -> Vcpu:
        return Vcpu(self, index)

    def stats_fd(self) -> int | None:
        """A fresh VM stats fd (the caller closes it), or None where KVM_GET_STATS_FD is missing."""
        try:
            return fcntl.ioctl(self.fd, ioctl.KVM_GET_STATS_FD, 0)
        except OSError:
            return None


def _address_of(mem: mmap.mmap) -> int:
    """Host virtual address of an mmap; the temporary ctypes view is dropped at once so close() works."""
    view = ctypes.c_char.from_buffer(mem)
    try:
        return ctypes.addressof(view)
    finally:
        del view


class Vcpu(_Handle):
    """A vCPU fd and its mmapped `struct kvm_run`."""

    def __init__(self, vm: Vm, index: int = 0) -> None:
        super().__init__()
        self.vm = vm
        self.index = index
        try:
            self.fd = self._own_fd(_ioctl(vm.fd, ioctl.KVM_CREATE_VCPU, index, what="KVM_CREATE_VCPU"))
            self.run_map = mmap.mmap(
                self.fd, vm.kvm.vcpu_mmap_size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE
            )
            self._stack.callback(self.run_map.close)
        except BaseException:
            self.close()
            raise

    def run(self) -> int:
        """One KVM_RUN; returns the exit reason. A signal (EINTR) comes back as ExitReason.INTR so the
        caller can look at its deadline and enter again: the retry happens in the VMM loop."""
        try:
            fcntl.ioctl(self.fd, ioctl.KVM_RUN, 0)
        except InterruptedError:
            return ExitReason.INTR
        except OSError as e:
            if e.errno == errno.EINTR:
                return ExitReason.INTR
            raise BackendError(f"KVM_RUN failed: {os.strerror(e.errno or 0)} (errno {e.errno})") from None
        return int.from_bytes(self.run_map[8:12], "little")

    def set_immediate_exit(self, value: bool) -> None:
        self.run_map[KVM_RUN_IMMEDIATE_EXIT_OFFSET] = 1 if value else 0

    def get_regs(self) -> Regs:
        regs = Regs()
        _ioctl(self.fd, ioctl.KVM_GET_REGS, regs, what="KVM_GET_REGS")
        return regs

    def set_regs(self, regs: Regs) -> None:
        _ioctl(self.fd, ioctl.KVM_SET_REGS, regs, what="KVM_SET_REGS")

    def get_sregs(self) -> Sregs:
        sregs = Sregs()
        _ioctl(self.fd, ioctl.KVM_GET_SREGS, sregs, what="KVM_GET_SREGS")
        return sregs

    def set_sregs(self, sregs: Sregs) -> None:
        _ioctl(self.fd, ioctl.KVM_SET_SREGS, sregs, what="KVM_SET_SREGS")

    def set_runnable(self) -> None:
        """With an in-kernel irqchip every vCPU but 0 starts as an AP waiting for INIT/SIPI; this VMM
        starts it directly at its entry point instead (KVM_SET_MP_STATE RUNNABLE)."""
        _ioctl(self.fd, ioctl.KVM_SET_MP_STATE, MpState(KVM_MP_STATE_RUNNABLE), what="KVM_SET_MP_STATE")

    def stats_fd(self) -> int | None:
        """A vCPU stats fd (binary stats, KVM_CAP_BINARY_STATS_FD); the caller closes it."""
        try:
            return fcntl.ioctl(self.fd, ioctl.KVM_GET_STATS_FD, 0)
        except OSError:
            return None
