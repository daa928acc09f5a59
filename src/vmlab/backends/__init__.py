"""Runtimes behind one protocol, found through a name -> module registry (imported lazily).

KINDS say what isolates a program: a `native` process, a `container` (the host kernel answers every
system call), a `sandbox` (a user-space kernel intercepts them: gVisor), a `vm` (a guest kernel; the
hypervisor sees only exits). RUNTIMES say what runs one: each is one module exposing
`open_runtime(ctx: RunContext) -> Backend`. A missing libvirt never breaks the Docker path and vice
versa, because a module is imported only when its runtime is asked for. Adding a runtime (podman/crun,
Firecracker, cloud-hypervisor) is one module and one line below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, get_args

from vmlab.backends.base import (
    Backend,
    ExecResult,
    Instance,
    InstanceSpec,
    Kind,
    Record,
    resource_name,
    validate_name,
)
from vmlab.backends.context import RunContext
from vmlab.errors import UsageError

KINDS: tuple[str, ...] = get_args(Kind)
INSTANCE_KINDS = ("container", "sandbox", "vm")  # kinds a runtime starts (native is the host itself)


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    kind: str
    module: str
    summary: str


RUNTIMES: dict[str, RuntimeInfo] = {
    r.name: r
    for r in (
        RuntimeInfo("docker", "container", "vmlab.backends.docker_backend", "Docker with runc"),
        RuntimeInfo("docker-runsc", "sandbox", "vmlab.backends.runsc_backend", "Docker with gVisor (runsc)"),
        RuntimeInfo("libvirt", "vm", "vmlab.backends.libvirt_backend", "libvirt: QEMU with KVM or TCG"),
    )
}
DEFAULTS = {"container": "docker", "sandbox": "docker-runsc", "vm": "libvirt"}


def runtime_names(kind: str | None = None) -> list[str]:
    return [n for n, r in RUNTIMES.items() if kind is None or r.kind == kind]


def runtime_info(name: str) -> RuntimeInfo:
    try:
        return RUNTIMES[name]
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


def open_runtime(name: str, ctx: RunContext | None = None) -> Backend:
    """The runtime called `name`, opened for `ctx` (URI, accel); its module is imported only now."""
    info = runtime_info(name)
    module = importlib.import_module(info.module)
    backend: Backend = module.open_runtime(ctx or RunContext())
    return backend


def get_backend(kind: str, **opts: Any) -> Backend:
    """The default runtime of `kind` (older entry point); opts: uri= for libvirt."""
    uri = opts.pop("uri", None)
    if opts:
        raise UsageError(f"unknown backend options {sorted(opts)}")
    return open_runtime(default_runtime(kind), RunContext(uri=uri))


__all__ = [
    "DEFAULTS",
    "INSTANCE_KINDS",
    "KINDS",
    "RUNTIMES",
    "Backend",
    "ExecResult",
    "Instance",
    "InstanceSpec",
    "Record",
    "RunContext",
    "RuntimeInfo",
    "default_runtime",
    "get_backend",
    "open_runtime",
    "resource_name",
    "runtime_info",
    "runtime_kind",
    "runtime_names",
    "validate_name",
]
