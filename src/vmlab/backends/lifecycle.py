"""The verbs behind `vmlab up/ls/exec/down`, over every runtime of the registry, with no printing.

Resources are found by libvirt metadata and Docker labels only, so these work from any process and
after the local state directory is gone.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmlab.backends import (
    default_runtime,
    listing_scopes,
    open_runtime,
    registry,
    runtime_info,
    runtime_kind,
)
from vmlab.backends.base import Backend, Instance, InstanceSpec, Record, validate_name
from vmlab.backends.context import RunContext
from vmlab.backends.ports import flock
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import NotAvailable, UsageError, VmlabError

log = logging.getLogger("vmlab")
NAMES_LOCK = Path(tempfile.gettempdir()) / "vmlab-names.lock"
Progress = Callable[[str], None]


def open_backend(runtime: str, uri: str | None = None) -> Backend:
    """The runtime called `runtime` (a kind names its default runtime); `uri` is libvirt's."""
    name = runtime if runtime in registry() else default_runtime(runtime)
    return open_runtime(name, RunContext(uri=uri))


@dataclass
class Listing:
    records: list[Record] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # runtime -> why it was not listed


def list_all(
    uri: str | None = None, runtimes: tuple[str, ...] | None = None, kinds: tuple[str, ...] = ()
) -> Listing:
    """Every vmlab resource of every reachable runtime (all of the registry by default); unreachable
    ones are reported, not fatal.

    Each runtime says where to look (`listing_scopes`): with no `uri`, libvirt looks on every local URI
    that opens, so a guest started on either escapes neither `ls` nor `down --all`; a given `uri`
    (`-c`) is the only one looked at.
    """
    names = tuple(registry()) if runtimes is None else runtimes
    if kinds:
        names = tuple(r for r in names if runtime_kind(r) in kinds)
    listing = Listing()
    for runtime in names:
        _list_runtime(runtime, uri, listing)
    listing.records.sort(key=lambda r: (r.created_at, r.name))
    return listing


def _list_runtime(runtime: str, uri: str | None, listing: Listing) -> None:
    """The runtime's resources in each of its scopes; only the first scope's failure is reported, and
    not when another scope showed resources. A resource seen in two scopes (as root, qemu:///session is
    served by the system daemon) is listed once, by UUID, under the first scope that showed it."""
    seen: set[str] = set()
    for i, ctx in enumerate(listing_scopes(runtime, uri)):
        try:
            backend = open_runtime(runtime, ctx)
        except NotAvailable as e:
            if i == 0:
                listing.unavailable[runtime] = e.one_line()
            continue
        try:
            for rec in backend.list_owned():
                key = str(rec.extra.get("uuid") or f"{rec.uri}\0{rec.resource}")
                if key not in seen:
                    seen.add(key)
                    listing.records.append(rec)
        finally:
            backend.close()
    if runtime in listing.unavailable and seen:
        del listing.unavailable[runtime]  # another scope answered: its resources are listed


@contextmanager
def attached(name: str, uri: str | None = None) -> Iterator[Instance]:
    """The live instance called `name`, whichever backend holds it."""
    validate_name(name)
    listing = list_all(uri)
    matches = [r for r in listing.records if r.name == name]
    if not matches:
        extra = f" ({'; '.join(listing.unavailable.values())})" if listing.unavailable else ""
        raise UsageError(f"no instance named {name!r}{extra}", hint="vmlab ls")
    record = matches[0]
    backend = open_backend(record.runtime or record.kind, record.uri or uri)
    try:
        inst = backend.attach(record)
        try:
            yield inst
        finally:
            inst.close()
    finally:
        backend.close()


def up(spec: InstanceSpec, kind: str, uri: str | None = None, progress: Progress | None = None) -> Instance:
    """Create, start and wait for readiness; anything that fails or is interrupted leaves nothing behind.
    `kind` is a kind (its default runtime) or a runtime name."""
    say = progress or log.info
    from vmlab.images import get_image

    runtime = kind if kind in registry() else default_runtime(kind)
    if runtime_info(runtime).images:
        get_image(spec.image)  # full sha256 verification here, outside the timed ladder
    backend = open_backend(runtime, uri)
    try:
        try:
            with flock(NAMES_LOCK):  # check-then-create is atomic across parallel `vmlab up`
                _check_unique(spec.name, other=[r for r in registry() if r != runtime], uri=uri)
                inst = backend.create(spec)
            say(
                f"{runtime_kind(runtime)} {inst.resource} defined on {runtime}; starting "
                f"(accel {inst.accel}: {inst.accel_reason})"
            )
            inst.start()
            say(f"{inst.name}: started; waiting for readiness (timeout {spec.ready_timeout_s:.0f} s)")
            inst.wait_ready()
        except BaseException:
            with deferred_interrupts():
                _cleanup(backend)
            raise
        return inst
    finally:
        backend.close()


def _cleanup(backend: Backend) -> None:
    try:
        backend.cleanup_created()
    except VmlabError as e:
        log.warning("cleanup after a failed up: %s", e.one_line())


def _check_unique(name: str, other: list[str], uri: str | None) -> None:
    listing = list_all(uri, runtimes=tuple(other))
    for rec in listing.records:
        if rec.name == name:
            raise UsageError(
                f"an instance named {name!r} exists already ({rec.kind} {rec.resource})",
                hint=f"vmlab down {name}, or choose another name",
            )


def down(
    names: list[str] | None = None,
    run_id: str | None = None,
    everything: bool = False,
    uri: str | None = None,
    all_homes: bool = False,
) -> tuple[list[Record], Listing]:
    """Destroy by name, by run id, or all vmlab resources; returns what was destroyed.

    `everything` means every resource created from this VMLAB_HOME (recorded on the resource, so the
    state directory is not needed); `all_homes` widens it to every vmlab resource on the host.
    """
    from vmlab.paths import vmlab_home

    if not (names or run_id or everything):
        raise UsageError("say what to destroy", hint="vmlab down NAME, --run ID or --all")
    for n in names or []:
        validate_name(n)
    listing = list_all(uri)
    if names:
        missing = sorted(set(names) - {r.name for r in listing.records})
        if missing:
            raise UsageError(f"no instance named {', '.join(repr(m) for m in missing)}", hint="vmlab ls")
    home = str(vmlab_home())
    chosen = [
        r
        for r in listing.records
        if (everything and (all_homes or r.home in (home, "")))
        or (names and r.name in names)
        or (run_id and r.run_id == run_id)
    ]
    by_backend: dict[tuple[str, str], list[Record]] = {}
    for rec in chosen:  # each VM on the URI it was found on
        by_backend.setdefault((rec.runtime or rec.kind, rec.uri or uri or ""), []).append(rec)
    done: list[Record] = []
    for (runtime, rec_uri), records in by_backend.items():
        backend = open_backend(runtime, rec_uri or None)
        try:
            for rec in records:
                with deferred_interrupts():
                    backend.destroy_record(rec)
                done.append(rec)
        finally:
            backend.close()
    return done, listing


def ladder_relative(inst: Instance) -> dict[str, float]:
    t0 = inst.ladder.get("create_called", 0.0)
    return {k: round(v - t0, 4) for k, v in inst.ladder.items()}


def summary(inst: Instance) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": inst.name,
        "kind": inst.kind,
        "runtime": inst.runtime,
        "resource": inst.resource,
        "accel": inst.accel,
        "accel_reason": inst.accel_reason,
        "ladder_s": ladder_relative(inst),
    }
    if inst.address:
        data["address"] = inst.address
    uptime = inst.guest_uptime()
    if uptime is not None:
        data["guest_uptime_at_marker_s"] = uptime
    return data
