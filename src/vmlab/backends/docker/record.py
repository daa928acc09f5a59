"""A Docker container as a Record: its vmlab.* labels (the only state `ls` and `down` need) and what
Docker says of it (state, uptime, published ports)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from vmlab.backends.base import Kind, Record


class _Runtime(Protocol):
    """What a record says of the runtime that made the container (DockerBackend, RunscBackend)."""

    @property
    def kind(self) -> Kind: ...
    @property
    def runtime(self) -> str: ...
    @property
    def accel_label(self) -> str: ...


def record_of(c: Any, backend: _Runtime) -> Record:
    """What `ls` and `down` know of a container, read back from its labels and Docker's state."""
    labels = c.labels or {}
    attrs = c.attrs or {}
    state = attrs.get("State", {}) if isinstance(attrs.get("State"), dict) else {}
    status = state.get("Status", c.status)
    uptime = None
    started = state.get("StartedAt", "")
    if status == "running" and started:
        try:
            t = dt.datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
            uptime = round((dt.datetime.now(dt.UTC) - t).total_seconds(), 1)
        except ValueError:
            uptime = None
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    published = [
        f"{b.get('HostIp')}:{b.get('HostPort')}->{port}"
        for port, bs in sorted(ports.items())
        for b in (bs or [])
    ]
    address = ", ".join(published)
    return Record(
        name=labels.get("vmlab.name", ""),
        kind=backend.kind,
        runtime=backend.runtime,
        run_id=labels.get("vmlab.run_id", ""),
        resource=c.name,
        state=status,
        lab=labels.get("vmlab.lab", ""),
        accel=backend.accel_label,
        address=address or "(network none)",
        created_at=labels.get("vmlab.created_at", ""),
        uptime_s=uptime,
        image=f"{labels.get('vmlab.image', '')}:{labels.get('vmlab.image_digest', '')[:12]}",
        home=labels.get("vmlab.home", ""),
        extra={**labels, "container_id": c.id},
    )
