"""Backends behind one protocol: `get_backend("vm"|"container", **opts)` (imported lazily).

A missing libvirt must never break the Docker path and vice versa, so each module is imported only
when its kind is asked for.
"""

from __future__ import annotations

from typing import Any

from vmlab.backends.base import (
    Backend,
    ExecResult,
    Instance,
    InstanceSpec,
    Record,
    resource_name,
    validate_name,
)
from vmlab.errors import UsageError

KINDS = ("vm", "container")


def get_backend(kind: str, **opts: Any) -> Backend:
    """The backend for `kind`; opts: uri= for vm (default: backends/uri.py's choice)."""
    if kind == "vm":
        from vmlab.backends.libvirt_backend import LibvirtBackend

        return LibvirtBackend(**opts)
    if kind == "container":
        from vmlab.backends.docker_backend import DockerBackend

        return DockerBackend(**opts)
    raise UsageError(
        f"unknown kind {kind!r} (known: {', '.join(KINDS)})", hint="--kind vm or --kind container"
    )


__all__ = [
    "KINDS",
    "Backend",
    "ExecResult",
    "Instance",
    "InstanceSpec",
    "Record",
    "get_backend",
    "resource_name",
    "validate_name",
]
