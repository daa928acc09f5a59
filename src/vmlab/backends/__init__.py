"""Runtimes behind one protocol, found through a name -> module registry (imported lazily).

KINDS say what isolates a program: a `native` process, a `container` (the host kernel answers every
system call), a `sandbox` (a user-space kernel intercepts them: gVisor), a `vm` (a guest kernel; the
hypervisor sees only exits). RUNTIMES say what runs one: each is a folder of this package (docker/,
libvirt/, podman/) whose module exposes `open_runtime(ctx: RunContext) -> Backend` and whose probe
module its health, described by one RuntimeInfo line of vmlab.runtime_registry
(its kind, its health probe for `vmlab doctor` and `requires`, the commands the test suite probes it
with), which this package re-exports. A missing libvirt
never breaks the Docker path and vice versa, because a module is imported only when its runtime is asked
for. A runtime outside this package registers itself through the entry point group `vmlab.runtimes`
(docs/runtimes.md), so adding one edits no shared file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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
from vmlab.runtime_registry import (
    DEFAULTS,
    ENTRY_POINTS,
    INSTANCE_KINDS,
    RUNTIMES,
    Health,
    ProbeCommand,
    RuntimeInfo,
    default_runtime,
    load_plugins,
    probe,
    register,
    registry,
    runtime_info,
    runtime_kind,
    runtime_names,
    unregister,
)

KINDS: tuple[str, ...] = get_args(Kind)


def open_runtime(name: str, ctx: RunContext | None = None) -> Backend:
    """The runtime called `name`, opened for `ctx` (URI, accel); its module is imported only now."""
    info = runtime_info(name)
    module = importlib.import_module(info.module)
    backend: Backend = module.open_runtime(ctx or RunContext())
    return backend


def listing_scopes(name: str, uri: str | None = None) -> list[RunContext]:
    """Where `ls` and `down` look for the runtime's resources: its module's `listing_scopes(uri)` when
    it has one (libvirt: every local URI that may hold guests, the default one first), else `uri`."""
    module = importlib.import_module(runtime_info(name).module)
    scopes: Callable[[str | None], list[RunContext]] | None = getattr(module, "listing_scopes", None)
    return scopes(uri) if scopes is not None else [RunContext(uri=uri)]


def get_backend(kind: str, **opts: Any) -> Backend:
    """The default runtime of `kind`, opened; opts: uri= for libvirt."""
    uri = opts.pop("uri", None)
    if opts:
        raise UsageError(f"unknown backend options {sorted(opts)}")
    return open_runtime(default_runtime(kind), RunContext(uri=uri))


__all__ = [
    "DEFAULTS",
    "ENTRY_POINTS",
    "INSTANCE_KINDS",
    "KINDS",
    "RUNTIMES",
    "Backend",
    "ExecResult",
    "Health",
    "Instance",
    "InstanceSpec",
    "ProbeCommand",
    "Record",
    "RunContext",
    "RuntimeInfo",
    "default_runtime",
    "get_backend",
    "listing_scopes",
    "load_plugins",
    "open_runtime",
    "probe",
    "register",
    "registry",
    "resource_name",
    "runtime_info",
    "runtime_kind",
    "runtime_names",
    "unregister",
    "validate_name",
]
