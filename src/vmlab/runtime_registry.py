"""The runtime registry: one RuntimeInfo line per runtime, read by the runtimes (backends/), the
doctor, a lab step's `requires` and the test suite, without importing any runtime.

It sits below both backends/ and host/ (it imports neither statically): a runtime's module and its
health probe are named by strings and imported only when asked for. A runtime installed from elsewhere
registers itself through the entry point group `vmlab.runtimes` (docs/runtimes.md).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from vmlab.errors import UsageError

INSTANCE_KINDS = ("container", "sandbox", "vm")  # kinds a runtime starts (native is the host itself)


@dataclass(frozen=True)
class Health:
    """A runtime's answer to "can you run here?": what `vmlab doctor` shows and `requires` checks."""

    status: Literal["ok", "warn", "fail"]
    detail: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)


# A runtime's Python binding is in the `vm` extra: a probe that misses it gives this fix.
VM_EXTRA_FIX = (
    "pip install -e '.[vm]' (libvirt-python builds against libvirt's headers: "
    "apt-get install libvirt-dev pkg-config), or make setup"
)
log = logging.getLogger("vmlab")
ENTRY_POINTS = "vmlab.runtimes"  # the entry point group of runtimes installed from elsewhere


@dataclass(frozen=True)
class ProbeCommand:
    """A command independent of vmlab that succeeds when the runtime can run here (the test suite's
    probe: vmlab's own probe must not decide whether vmlab's tests run). "{uri}" is the suite's
    libvirt URI."""

    what: str  # what is missing when it fails, e.g. "the Docker daemon"
    argv: tuple[str, ...]


@dataclass(frozen=True)
class RuntimeInfo:
    """One registry line: everything shared code needs to know about a runtime, without importing it."""

    name: str
    kind: str
    module: str  # exposes open_runtime(ctx) -> Backend; optionally listing_scopes(uri) -> [RunContext]
    summary: str
    # the name a lab step `requires` and `vmlab doctor` shows (default: the runtime's name)
    requirement: str = ""
    # "module:function" returning a Health (status, detail, fix, data); imported only when probed
    probe: str = ""
    test_probes: tuple[ProbeCommand, ...] = ()
    test_marks: tuple[str, ...] = ()  # pytest markers of a test that needs this runtime
    images: bool = True  # runs vmlab's images: `up` verifies the image in full before the timed ladder
    as_root: bool = True  # False: normal users only (the root suite leaves it out; nonroot tests run it)

    @property
    def requirement_name(self) -> str:
        return self.requirement or self.name


_DOCKER_UP = ProbeCommand("the Docker daemon", ("docker", "version", "--format", "{{.Server.Version}}"))
RUNTIMES: dict[str, RuntimeInfo] = {
    r.name: r
    for r in (
        RuntimeInfo(
            "docker",
            "container",
            "vmlab.backends.docker.backend",
            "Docker with runc",
            probe="vmlab.backends.docker.probe:probe_docker",
            test_probes=(_DOCKER_UP,),
            test_marks=("docker",),
        ),
        RuntimeInfo(
            "docker-runsc",
            "sandbox",
            "vmlab.backends.docker.runsc",
            "Docker with gVisor (runsc)",
            requirement="sandbox",
            probe="vmlab.backends.docker.probe:probe_sandbox",
            test_probes=(
                _DOCKER_UP,
                ProbeCommand(
                    "gVisor (runsc) as a Docker runtime",
                    ("sh", "-c", "docker info --format '{{json .Runtimes}}' | grep -q runsc"),
                ),
            ),
            test_marks=("docker", "sandbox"),
        ),
        RuntimeInfo(
            "libvirt",
            "vm",
            "vmlab.backends.libvirt.backend",
            "libvirt: QEMU with KVM or TCG",
            probe="vmlab.backends.libvirt.probe:probe",
            test_probes=(ProbeCommand("libvirt at {uri}", ("virsh", "-c", "{uri}", "version")),),
            test_marks=("libvirt", "slow"),
        ),
        RuntimeInfo(
            "podman",
            "container",
            "vmlab.backends.podman.backend",
            "rootless Podman (normal users)",
            probe="vmlab.backends.podman.probe:probe",
            test_probes=(
                ProbeCommand("rootless podman", ("podman", "info", "--format", "{{.Version.Version}}")),
            ),
            test_marks=("podman",),
            as_root=False,
        ),
    )
}
DEFAULTS = {"container": "docker", "sandbox": "docker-runsc", "vm": "libvirt"}
_plugins_loaded = False


def register(info: RuntimeInfo) -> RuntimeInfo:
    """Add a runtime to the registry (what an entry point of `vmlab.runtimes` is loaded into)."""
    if info.kind not in INSTANCE_KINDS:
        raise UsageError(
            f"runtime {info.name!r} has kind {info.kind!r}", hint=f"one of {', '.join(INSTANCE_KINDS)}"
        )
    known = RUNTIMES.get(info.name)
    if known is not None and known != info:
        raise UsageError(f"a runtime named {info.name!r} is registered already ({known.module})")
    RUNTIMES[info.name] = info
    return info


def unregister(name: str) -> None:
    """Remove a runtime added by register() (tests); a default runtime stays."""
    if name not in DEFAULTS.values():
        RUNTIMES.pop(name, None)


def load_plugins(force: bool = False) -> dict[str, RuntimeInfo]:
    """Register the runtimes of every `vmlab.runtimes` entry point once (again with `force`). An entry
    point names a RuntimeInfo or a function returning one; one that fails to load is skipped with a
    warning, so a broken plug-in never breaks the built-in runtimes."""
    global _plugins_loaded
    if _plugins_loaded and not force:
        return RUNTIMES
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINTS):
        try:
            obj = ep.load()
            info = obj if isinstance(obj, RuntimeInfo) else obj()
            if not isinstance(info, RuntimeInfo):
                raise TypeError(f"{ep.value} gives {type(info).__name__}, not a RuntimeInfo")
            register(info)
        except Exception as e:  # a plug-in's fault: said, then skipped
            log.warning("runtime plug-in %s skipped: %s", ep.name, str(e).splitlines()[0] if str(e) else e)
    return RUNTIMES


def registry() -> dict[str, RuntimeInfo]:
    """Every runtime: the built-in ones and those of installed plug-ins."""
    return load_plugins()


def runtime_names(kind: str | None = None) -> list[str]:
    return [n for n, r in registry().items() if kind is None or r.kind == kind]


def runtime_info(name: str) -> RuntimeInfo:
    try:
        return registry()[name]
    except KeyError:
        raise UsageError(
            f"unknown runtime {name!r} (known: {', '.join(RUNTIMES)})", hint="--runtime docker-runsc"
        ) from None


def runtime_kind(name: str) -> str:
    return runtime_info(name).kind


def default_runtime(kind: str) -> str:
    if kind not in DEFAULTS:
        raise UsageError(
            f"unknown kind {kind!r} (known: {', '.join(INSTANCE_KINDS)})",
            hint="--kind vm, container or sandbox",
        )
    return DEFAULTS[kind]


def probe(name: str) -> Health:
    """The runtime's health (what `vmlab doctor` shows and `requires` checks); never raises."""
    info = runtime_info(name)
    if not info.probe:
        return Health("warn", f"runtime {name} has no health probe", "add probe= to its RuntimeInfo")
    module_name, _, func = info.probe.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), func)()
        return Health(found.status, found.detail, found.fix, dict(found.data))
    except Exception as e:  # a probe must not break doctor: its failure is the row
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return Health("fail", f"its probe {info.probe} failed: {first}", "report this as a bug")
