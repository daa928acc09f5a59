"""One protocol for every runtime (guests, containers, sandboxes), so experiments never care which one
they measure.

A Backend creates Instances from an InstanceSpec and finds what vmlab created earlier (by libvirt
metadata or Docker labels, never by local state). An Instance is a context manager whose destroy() is
idempotent; start() and wait_ready() fill `ladder` with time.monotonic() stamps per readiness stage.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable

from vmlab.backends.capabilities import CapabilityMissing, MemorySample, TrapCounter
from vmlab.backends.context import Accel
from vmlab.backends.readiness import CONTAINER_LADDER, VM_LADDER
from vmlab.errors import NotAvailable, UsageError
from vmlab.guest.result import ExecResult as ExecResult
from vmlab.guest.result import as_argv as as_argv

if TYPE_CHECKING:
    from vmlab.images.model import ImageInfo

Kind = Literal["native", "container", "sandbox", "vm"]

# the stage names, from the one table of each ladder (readiness.py)
VM_STAGES = VM_LADDER.names
CONTAINER_STAGES = CONTAINER_LADDER.names

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
RESOURCE_PREFIX = "vmlab-"
NS_URI = "https://vmlab.dev/xmlns/instance/1"


def validate_name(name: str) -> str:
    """Lowercase letters, digits and '-', 1-32 long, starting with a letter: safe in every namespace."""
    if not NAME_RE.match(name):
        raise UsageError(
            f"invalid name {name!r}: use 1-32 of a-z, 0-9 and '-', starting with a letter",
            hint="e.g. vmlab up g1",
        )
    return name


def resource_name(run_id: str, name: str) -> str:
    """vmlab-<run>-<name>: unique per run, recognisable in `virsh list` and `docker ps`."""
    return f"{RESOURCE_PREFIX}{run_id}-{name}"


@dataclass(frozen=True)
class InstanceSpec:
    name: str
    run_id: str
    image: str = "tiny"
    memory_mib: int | None = None  # None: the image's default
    vcpus: int = 1
    accel: Accel = "auto"
    lab: str = ""
    ready_timeout_s: float = 90.0
    kernel_args: str = ""  # appended to the image's kernel command line (VMs only)
    firmware: str | None = None  # VMs: "seabios" or "qboot"; None: the image's choice
    # containers: TCP ports published on 127.0.0.1 only (none: network_mode=none, no network at all)
    publish_ports: tuple[int, ...] = ()
    # VMs: a virtio balloon device (libvirt's setMemory then shrinks and grows the guest while it runs)
    balloon: bool = False
    # "host": the name is unique among everything vmlab runs here (`vmlab up`, addressed by name later);
    # "run": unique within its run only (compare's instances: two runs side by side must not collide)
    name_scope: Literal["host", "run"] = "host"

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.vcpus < 1:
            raise UsageError(f"--vcpus must be at least 1, not {self.vcpus}")
        if self.firmware is not None and self.firmware not in ("seabios", "qboot"):
            raise UsageError(f"unknown firmware {self.firmware!r}", hint="--firmware qboot or seabios")
        if self.ready_timeout_s <= 0:
            raise UsageError(f"the ready timeout must be positive, not {self.ready_timeout_s}")


def container_labels(spec: InstanceSpec, kind: str, runtime: str, image: ImageInfo) -> dict[str, str]:
    """The labels a container runtime puts on what it creates (Docker's and podman's alike): what
    `vmlab ls` shows and `vmlab down` selects on, and where the instance came from."""
    import datetime as dt
    import os

    from vmlab.paths import vmlab_home

    return {
        "vmlab.owner": os.environ.get("USER", str(os.getuid())),
        "vmlab.name": spec.name,
        "vmlab.kind": kind,
        "vmlab.runtime": runtime,
        "vmlab.home": str(vmlab_home()),
        "vmlab.run_id": spec.run_id,
        "vmlab.lab": spec.lab,
        "vmlab.image": image.name,
        "vmlab.image_digest": image.digest,
        "vmlab.created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


@dataclass
class Record:
    """What `ls` and `down` know about a resource, read back from libvirt metadata or Docker labels."""

    name: str
    kind: Kind
    run_id: str
    resource: str
    state: str
    runtime: str = ""
    lab: str = ""
    accel: str = ""
    address: str = ""
    created_at: str = ""
    uptime_s: float | None = None
    image: str = ""
    home: str = ""  # the VMLAB_HOME that created it: `down --all` stays within one home
    uri: str = ""  # VMs: the libvirt URI it lives on (verbs reopen that URI, whatever the default)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "runtime": self.runtime,
            "state": self.state,
            "accel": self.accel,
            "address": self.address,
            "uptime_s": self.uptime_s,
            "run_id": self.run_id,
            "lab": self.lab,
            "resource": self.resource,
            "image": self.image,
            "created_at": self.created_at,
            "home": self.home,
            "uri": self.uri,
        }


class Instance(Protocol):
    name: str
    kind: Kind
    runtime: str
    accel: str
    accel_reason: str
    ladder: dict[str, float]
    resource: str
    io_sink: str  # where an I/O workload writes: a guest's serial device, a container's /dev/null

    @property
    def address(self) -> str: ...  # how to reach it from this host ("" when only exec reaches it)

    def start(self) -> None: ...
    def wait_ready(self, timeout_s: float | None = None) -> None: ...
    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult: ...
    def memory(self) -> MemorySample: ...
    def trap_counter(self) -> TrapCounter: ...
    def guest_uptime(self) -> float | None: ...
    def pid(self) -> int | None: ...
    def destroy(self) -> None: ...
    def close(self) -> None: ...
    def console_tail(self, lines: int = 20) -> list[str]: ...
    def shell_argv(self) -> list[str]: ...  # an interactive shell's command; NotAvailable without one
    def __enter__(self) -> Self: ...
    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class Backend(Protocol):
    kind: Kind
    runtime: str

    def create(self, spec: InstanceSpec) -> Instance: ...
    def list_owned(self) -> list[Record]: ...
    def attach(self, record: Record) -> Instance: ...
    def destroy_record(self, record: Record) -> None: ...
    def cleanup_created(self) -> None: ...
    def close(self) -> None: ...


def ensure_name_free(backend: Backend, name: str, run_id: str | None = None) -> None:
    """Names are unique per runtime across everything vmlab owns (found by metadata/labels, not
    state); with `run_id`, only within that run (the resource name carries the run id)."""
    for rec in backend.list_owned():
        if rec.name == name and (run_id is None or rec.run_id == run_id):
            raise UsageError(
                f"an instance named {name!r} exists already ({rec.kind} {rec.resource})",
                hint=f"vmlab down {name}, or choose another name",
            )


class InstanceBase:
    """Shared mechanics: the ladder, context-manager teardown, idempotent destroy, and "this runtime
    does not offer that" for every capability a subclass does not override."""

    kind: Kind
    runtime: str = ""
    accel: str = ""
    accel_reason: str = ""
    io_sink: str = "/dev/null"
    stages: tuple[str, ...] = ()  # the runtime's ladder, from readiness.py

    @property
    def address(self) -> str:
        return ""

    def __init__(self, name: str, resource: str) -> None:
        self.name = name
        self.resource = resource
        self.ladder: dict[str, float] = {"create_called": time.monotonic()}
        self._destroyed = False

    def mark(self, stage: str, t: float | None = None) -> float:
        """Stamp `stage` now (or at `t`, an event's own monotonic time); only a stage of the table."""
        if self.stages and stage not in self.stages:
            raise ValueError(f"{stage!r} is not a stage of {self.runtime}'s ladder {self.stages}")
        t = time.monotonic() if t is None else t
        self.ladder[stage] = t
        return t

    def ladder_relative(self) -> dict[str, float]:
        """Seconds since create_called, per stage (what reports show)."""
        t0 = self.ladder.get("create_called", 0.0)
        return {k: round(v - t0, 4) for k, v in self.ladder.items()}

    def memory(self) -> MemorySample:
        raise CapabilityMissing(f"runtime {self.runtime} offers no memory sample")

    def trap_counter(self) -> TrapCounter:
        raise CapabilityMissing(f"runtime {self.runtime} offers no trap counter")

    def shell_argv(self) -> list[str]:
        """The command that opens an interactive shell in this instance (what `vmlab ssh` execs): the
        runtime knows how to reach its own instances, so the CLI holds no runtime knowledge."""
        raise NotAvailable(
            f"runtime {self.runtime} offers no interactive shell into {self.kind} {self.name}",
            hint=f"vmlab exec {self.name} -- CMD",
        )

    def guest_uptime(self) -> float | None:
        """The guest kernel's own uptime at its ready marker; None where there is no guest kernel."""
        return None

    def close(self) -> None:
        """Release client-side handles (SSH sessions) without destroying the resource."""

    def destroy(self) -> None:
        if self._destroyed:
            return
        self._destroy()
        self._destroyed = True

    def _destroy(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()
