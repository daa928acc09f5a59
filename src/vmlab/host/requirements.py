"""What a lab step `requires`, probed before the step runs.

An unmet requirement makes the step `skipped` with the reason and the fix, never a crash. Device probes
are doctor's own (one probe per capability); a runtime (docker, sandbox, libvirt, a plug-in) is probed
by its own probe from the runtime registry; any other name is a program looked up on PATH plus the
system directories Debian keeps out of a normal user's PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from vmlab.host import doctor

SYSTEM_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


@dataclass(frozen=True)
class Unmet:
    requirement: str
    reason: str
    fix: str

    def one_line(self) -> str:
        return f"{self.requirement}: {self.reason}" + (f" (fix: {self.fix})" if self.fix else "")


Probe = Callable[[], Unmet | None]


def which(program: str) -> str | None:
    """shutil.which, also searching /usr/sbin and /sbin (not on a normal user's PATH on Debian)."""
    path = os.environ.get("PATH", os.defpath)
    return shutil.which(program, path=os.pathsep.join([path, *SYSTEM_DIRS]))


def _tool(name: str, program: str, package: str) -> Probe:
    def probe() -> Unmet | None:
        if which(program) is None:
            return Unmet(name, f"{program} is not installed", f"apt-get install {package} (or make setup)")
        return None

    return probe


def _from_doctor(name: str, row: Callable[[], doctor.Row]) -> Probe:
    def probe() -> Unmet | None:
        found = row()
        if found.status == "fail":
            return Unmet(name, found.detail, found.fix)
        return None

    return probe


def _root() -> Unmet | None:
    if os.geteuid() != 0:
        return Unmet("root", "this step reads host-wide counters only root may read", "run it as root")
    return None


def _lazy(spec: str) -> Probe:
    """A probe that lives in a lab's package ("module:function"), imported when first asked."""

    def probe() -> Unmet | None:
        import importlib

        module, _, func = spec.partition(":")
        found: Unmet | None = getattr(importlib.import_module(module), func)()
        return found

    return probe


REQUIREMENTS: dict[str, Probe] = {
    "kvm": _from_doctor("kvm", doctor._probe_kvm),
    "root": _root,
    "java": _tool("java", "java", "default-jdk-headless"),
    "javac": _tool("javac", "javac", "default-jdk-headless"),
    "jasmin": _tool("jasmin", "jasmin", "jasmin-sable"),
    "valgrind": _tool("valgrind", "valgrind", "valgrind"),
    "gcc": _tool("gcc", "gcc", "gcc"),
    "aarch64-gcc": _tool("aarch64-gcc", "aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    "qemu-user": _tool("qemu-user", "qemu-aarch64", "qemu-user"),
    "strace": _tool("strace", "strace", "strace"),
    "runsc": _tool("runsc", "runsc", "runsc"),
    "userns": _lazy("vmlab.osvirt.requires:userns"),
    "cgroup-write": _lazy("vmlab.osvirt.requires:cgroup_write"),
}


def _runtime(name: str) -> Probe | None:
    """The probe of the runtime a step names (by its requirement name or its runtime name)."""
    from vmlab.runtime_registry import probe, registry

    for runtime, info in registry().items():
        if name in (info.requirement_name, runtime):

            def found(runtime: str = runtime) -> Unmet | None:
                h = probe(runtime)
                return Unmet(name, h.detail, h.fix) if h.status == "fail" else None

            return found
    return None


def probe_for(name: str) -> Probe:
    """A named probe, then a runtime's own probe, else: NAME is a program that must be on PATH (or in
    /usr/sbin, /sbin)."""
    return REQUIREMENTS.get(name) or _runtime(name) or _tool(name, name, f"the package that provides {name}")


def unmet(names: list[str], cache: dict[str, Unmet | None] | None = None) -> list[Unmet]:
    """The requirements among `names` this host does not meet; `cache` spares re-probing per step."""
    found: list[Unmet] = []
    for name in names:
        if cache is not None and name in cache:
            result = cache[name]
        else:
            result = probe_for(name)()
            if cache is not None:
                cache[name] = result
        if result is not None:
            found.append(result)
    return found
