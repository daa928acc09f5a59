"""CPU facts that decide between hardware-assisted guests and TCG."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def hw_virt() -> bool:
    """VT-x or AMD-V visible: a full Linux guest can run under KVM."""
    return bool({"vmx", "svm"} & cpu_flags())


def kvm_module() -> str | None:
    """Which KVM module serves /dev/kvm (kvm_intel, kvm_amd, kvm_pvm, ...), if any is loaded."""
    for name in ("kvm_intel", "kvm_amd", "kvm_pvm"):
        if Path("/sys/module", name).exists():
            return name
    return "kvm" if Path("/sys/module/kvm").exists() else None


def full_guest_accel(requested: str = "auto") -> tuple[str, str]:
    """The accelerator a full-system guest gets, and why (the report records both).

    On this lab's CI hosts /dev/kvm is served by a paravirtual module without vmx/svm: a standard
    kernel does not boot there (docs/host-facts.md), so `auto` must choose TCG even though /dev/kvm opens.
    """
    kvm_dev = Path("/dev/kvm").exists()
    if requested == "tcg":
        return "tcg", "requested with --accel tcg"
    if requested == "kvm":
        return "kvm", "requested with --accel kvm"
    if not kvm_dev:
        return "tcg", "no /dev/kvm on this host"
    if not hw_virt():
        module = kvm_module() or "unknown module"
        return (
            "tcg",
            f"/dev/kvm is served by {module} without vmx/svm: a standard kernel cannot boot under it",
        )
    return "kvm", "vmx/svm present and /dev/kvm available"
