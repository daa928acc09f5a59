"""A locked-down one-shot container under Docker: no network, a read-only root, every capability
dropped, no new privileges, CPU, memory, process and time limits, inputs mounted read-only. What the
grader's re-runs (grade/sandbox.py) run a student's code in, through the Docker runtime's own client,
error translation and removal.

Such a container is no instance: its labels say what it is for (`vmlab.purpose`) and never carry
`vmlab.owner`, the key `vmlab ls` and `vmlab down --all` select on, so they never list or remove it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import docker.errors

from vmlab.backends.docker.backend import LABEL_FILTER
from vmlab.backends.docker.errors import DOCKER_ERRORS, call, translate
from vmlab.backends.docker.remove import remove_container
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, UsageError

PURPOSE = "vmlab.purpose"  # the label every locked container carries: what it is for


@dataclass(frozen=True)
class Locked:
    """One locked-down run: `argv` in `image` as `user`, `mounts` (host folder: container path) read-only;
    `labels` say what it is for (`vmlab.purpose`, required)."""

    image: str
    argv: tuple[str, ...]
    labels: dict[str, str]
    mounts: dict[str, str] = field(default_factory=dict)
    user: str = "65534:65534"
    workdir: str = "/tmp"
    tmpfs_mib: int = 32
    timeout_s: float = 120.0
    cpus: float = 1.0
    memory_mib: int = 512
    pids: int = 64
    devices: tuple[str, ...] = ()  # host paths passed through read-write (e.g. /dev/kvm)
    group_add: tuple[str, ...] = ()

    def container_labels(self) -> dict[str, str]:
        """The labels it carries; refuses the keys that would make `ls` and `down` take it for an instance."""
        taken = sorted(k for k in self.labels if k in (LABEL_FILTER, "vmlab.name"))
        if taken:
            raise UsageError(
                f"a locked container must not carry {', '.join(taken)}: `vmlab down --all` would remove it",
                hint=f"label it with {PURPOSE} only",
            )
        if not self.labels.get(PURPOSE):
            raise UsageError(
                f"a locked container has no label {PURPOSE} (what it is for)", hint=f"{PURPOSE}=rerun"
            )
        return dict(self.labels)

    def create_kwargs(self) -> dict[str, Any]:
        """The Docker SDK's create() arguments (a unit test reads the lock-down from them)."""
        kwargs: dict[str, Any] = dict(
            image=self.image,
            command=list(self.argv),
            user=self.user,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"size={self.tmpfs_mib}m,mode=1777"},
            mem_limit=f"{self.memory_mib}m",
            memswap_limit=f"{self.memory_mib}m",
            nano_cpus=int(self.cpus * 1e9),
            pids_limit=self.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            volumes={host: {"bind": inside, "mode": "ro"} for host, inside in self.mounts.items()},
            working_dir=self.workdir,
            labels=self.container_labels(),
            detach=True,
        )
        if self.devices:
            kwargs["devices"] = [f"{d}:{d}:rw" for d in self.devices]
        if self.group_add:
            kwargs["group_add"] = list(self.group_add)
        return kwargs


@dataclass(frozen=True)
class LockedResult:
    rc: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float


def run_locked(client: Any, run: Locked) -> LockedResult:
    """Create, start, wait (at most `timeout_s`, then kill), collect the output, remove: the container
    never outlives the call, also when it fails or is interrupted."""
    kwargs = run.create_kwargs()
    container = None
    t0 = time.monotonic()
    try:
        try:
            container = client.containers.create(**kwargs)
            container.start()
        except DOCKER_ERRORS as e:
            raise translate(e, "the locked container failed to start") from e
        timed_out = False
        try:
            status = container.wait(timeout=run.timeout_s)
            rc: int | None = int(status.get("StatusCode", -1))
        except DOCKER_ERRORS:  # requests' ReadTimeout or a dropped connection: the time limit
            timed_out, rc = True, None
            with contextlib.suppress(*DOCKER_ERRORS):
                container.kill()
        duration = time.monotonic() - t0
        out, err = _logs(container)
        return LockedResult(rc=rc, stdout=out, stderr=err, timed_out=timed_out, duration_s=duration)
    finally:
        if container is not None:
            with deferred_interrupts(), contextlib.suppress(BackendError):
                remove_container(client, container.id, wait_s=10.0)


def _logs(container: Any) -> tuple[str, str]:
    def read(stdout: bool) -> str:
        raw = call(lambda: container.logs(stdout=stdout, stderr=not stdout), "reading the container's output")
        return bytes(raw).decode("utf-8", "replace")

    return read(True), read(False)


def import_image(client: Any, tar: bytes, tag: str, changes: list[str]) -> str:
    """`tag` made from a root file system tar unless Docker has it (nothing is ever pulled)."""
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    except DOCKER_ERRORS as e:
        raise translate(e, f"looking up image {tag}") from e
    repo, version = tag.rsplit(":", 1)
    try:
        client.api.import_image_from_data(tar, repository=repo, tag=version, changes=changes)
        client.images.get(tag)
    except DOCKER_ERRORS as e:
        raise translate(e, f"docker import of {tag} failed") from e
    return tag


def has_image(client: Any, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False
    except DOCKER_ERRORS as e:
        raise translate(e, f"looking up image {tag}") from e
