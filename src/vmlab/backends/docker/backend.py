"""The `docker` runtime: containers under Docker with runc, from the same rootfs as the tiny guest
(`docker import`, never pulled). `runsc.py` reuses it with gVisor as Docker's OCI runtime.

Labels vmlab.* on every container are the only state `ls`/`down` need (vmlab.runtime tells the
runtimes apart). Docker errors, including the connection errors `requests` raises when dockerd is
gone, are translated in errors.py alone. Containers are created with AutoRemove: if dockerd dies
mid-run, it removes them itself when it comes back, so nothing is left.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import docker.errors

from vmlab.backends.base import (
    ContainerOptions,
    ExecResult,
    InstanceBase,
    InstanceSpec,
    Kind,
    Record,
    as_argv,
    container_labels,
    ensure_name_free,
    resource_name,
    runtime_options,
)
from vmlab.backends.capabilities import CapabilityMissing, MemorySample, ProcessMemory, TrapCounter
from vmlab.backends.context import RunContext
from vmlab.backends.docker.errors import (
    DOCKER_ERRORS,
    ContainerdGone,
    DaemonGone,
    call,
    containerd_down,
    translate,
)
from vmlab.backends.docker.record import record_of
from vmlab.backends.docker.remove import (
    containerd_leftover_commands,
    remove_container,
    remove_containerd_leftovers,
)
from vmlab.backends.readiness import CONTAINER_LADDER, climb
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, UsageError

log = logging.getLogger("vmlab")
LABEL_FILTER = "vmlab.owner"
RUNTIME = "docker"


def open_runtime(ctx: RunContext) -> DockerBackend:
    return DockerBackend()


class DockerBackend:
    kind: Kind = "container"
    runtime = RUNTIME
    oci_runtime: str | None = None  # Docker's --runtime; None: the daemon's default (runc)
    accel_label = "none (namespaces)"

    def __init__(self, client: Any = None) -> None:
        from vmlab.images.docker_image import docker_client

        self.client = client or docker_client()
        self._created: list[DockerInstance] = []

    def _instance(self, container: Any, name: str, t0: float, ready_timeout_s: float) -> DockerInstance:
        return DockerInstance(self, container, name, t0, ready_timeout_s)

    def _owns(self, labels: dict[str, str]) -> bool:
        """An instance of this runtime: every instance has a name; a container without one is not an
        instance (older vmlab's grading containers carried vmlab.owner too, and `down --all` must
        never remove one another job is using)."""
        return bool(labels.get("vmlab.name")) and labels.get("vmlab.runtime", RUNTIME) == self.runtime

    def create(self, spec: InstanceSpec) -> DockerInstance:
        t0 = time.monotonic()
        from vmlab.images import get_image
        from vmlab.images.docker_image import ensure_docker_image

        options = runtime_options(ContainerOptions, spec.options, self.runtime)
        image = get_image(spec.image, verify="quick")
        memory = spec.memory_mib
        if memory is not None and memory < 6:
            raise UsageError(f"--memory {memory} MiB is below Docker's minimum of 6 MiB", hint="--memory 64")
        ensure_name_free(self, spec.name, spec.run_id if spec.name_scope == "run" else None)
        try:
            ensure_docker_image(image, self.client)
        except DOCKER_ERRORS as e:
            raise translate(e, f"importing image {image.docker_tag}") from e
        rname = resource_name(spec.run_id, spec.name)
        labels = container_labels(spec, self.kind, self.runtime, image)
        kwargs: dict[str, Any] = {
            "name": rname,
            "labels": labels,
            "detach": True,
            "nano_cpus": int(spec.vcpus * 1e9),
            "auto_remove": True,
        }
        if self.oci_runtime:
            kwargs["runtime"] = self.oci_runtime
        if memory is not None:
            kwargs["mem_limit"] = f"{memory}m"
        if options.publish_ports:
            kwargs["ports"] = {f"{p}/tcp": ("127.0.0.1", None) for p in options.publish_ports}
        else:
            kwargs["network_mode"] = "none"
        with deferred_interrupts():
            try:
                container = self.client.containers.create(image.docker_tag, **kwargs)
            except DOCKER_ERRORS as e:
                raise translate(e, f"creating container {rname} failed") from e
            inst = self._instance(container, spec.name, t0, spec.ready_timeout_s)
            self._created.append(inst)
        inst.mark("created")
        return inst

    def list_owned(self) -> list[Record]:
        containers = call(
            # ignore_removed: a container removed between the listing and its inspect (an auto-removed
            # one of another run, seen with batches starting and ending at once) is simply not listed
            lambda: self.client.containers.list(
                all=True, filters={"label": LABEL_FILTER}, ignore_removed=True
            ),
            "listing containers failed",
        )
        return [record_of(c, self) for c in containers if self._owns(c.labels or {})]

    def attach(self, record: Record) -> DockerInstance:
        container = call(lambda: self.client.containers.get(record.resource), f"container {record.resource}")
        inst = self._instance(container, record.name, time.monotonic(), 60.0)
        inst.ladder.clear()
        return inst

    def destroy_record(self, record: Record) -> None:
        remove_container(self.client, record.resource)

    def cleanup_created(self) -> None:
        for inst in reversed(self._created):
            with contextlib.suppress(DaemonGone):  # AutoRemove: dockerd removes it when it is back
                inst.destroy()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must not mask the real error
            self.client.close()


class DockerInstance(InstanceBase):
    kind: Kind = "container"
    runtime = RUNTIME
    accel = "none"
    accel_reason = "containers share the host kernel (namespaces and cgroups, no hypervisor)"
    stages = CONTAINER_LADDER.names

    def __init__(
        self, backend: DockerBackend, container: Any, name: str, t0: float, ready_timeout_s: float
    ) -> None:
        super().__init__(name, container.name)
        self.ladder["create_called"] = t0
        self.backend = backend
        self.container = container
        self.ready_timeout_s = ready_timeout_s
        self._since = time.time()

    @property
    def api(self) -> Any:
        return self.backend.client.api

    def start(self) -> None:
        self._since = time.time() - 1.0
        try:
            self.container.start()
        except DOCKER_ERRORS as e:
            err = translate(e, f"starting {self.resource} failed")
            self._start_lost_containerd = isinstance(err, ContainerdGone)
            raise err from e

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Climb the container ladder (readiness.py): `running` at Docker's own `start` event (the
        daemon's clock, carried over to time.monotonic), `first_exec` when the first exec returned."""
        climb(
            self,
            CONTAINER_LADDER.ready,
            deadline=time.monotonic() + (timeout_s or self.ready_timeout_s),
            abort=self._exited,
            prefix=self.name,
            stamp=self.mark,
        )

    def _exited(self) -> str | None:
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return "the container is gone (it exited and was removed)"
        except DOCKER_ERRORS as e:
            raise translate(e, f"inspecting {self.resource}") from e
        status = self.container.status
        return f"the container exited ({status})" if status in ("exited", "dead") else None

    # --- the ladder's probes (readiness.ContainerSteps) --------------------------------------------

    def first_exec_ok(self) -> bool | None:
        return True if self.exec(["true"], timeout=10).ok else None

    def start_event(self) -> float | None:
        """The monotonic time of this container's `start` event, or None before there is one."""
        try:
            events = self.api.events(
                since=self._since,
                until=time.time(),
                filters={"container": self.container.id, "event": "start"},
                decode=True,
            )
            found = [e for e in events if e.get("timeNano")]
        except DOCKER_ERRORS as e:
            raise translate(e, f"reading Docker events of {self.resource}") from e
        if not found:
            return None
        happened = int(found[0]["timeNano"]) / 1e9
        now_wall, now_mono = time.time(), time.monotonic()
        return now_mono - max(0.0, now_wall - happened)

    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult:
        """docker exec through the API; `timeout` bounds the call on the client socket."""
        argv = as_argv(cmd)
        t0 = time.monotonic()
        api = self.api
        try:
            exec_id = api.exec_create(self.container.id, list(argv), stdout=True, stderr=True)["Id"]
            out, err = api.exec_start(exec_id, demux=True)
            rc = api.exec_inspect(exec_id).get("ExitCode")
        except DOCKER_ERRORS as e:
            raise translate(e, f"exec in {self.resource} failed") from e
        if rc == 126:  # also "cannot execute"; containerd is asked, and only its absence raises
            self._containerd_answers(f"exec in {self.resource} failed")
        return ExecResult(
            argv=argv,
            rc=int(rc if rc is not None else -1),
            stdout=(out or b"").decode("utf-8", "replace"),
            stderr=(err or b"").decode("utf-8", "replace"),
            duration_s=time.monotonic() - t0,
        )

    def _containerd_answers(self, what: str) -> None:
        """ContainerdGone if containerd is away. An exec dockerd could not start with containerd gone
        comes back as exit status 126, with no output or with the gRPC error as its output (both seen
        here), which must not pass for the command's own status; `top` asks containerd itself, so its
        failure tells."""
        try:
            self.api.top(self.container.id)
        except DOCKER_ERRORS as e:
            if containerd_down(e):
                raise translate(e, what) from e

    def pid(self) -> int | None:
        """The container's init as the host sees it (runc: the workload; runsc: gVisor's Sentry)."""
        try:
            self.container.reload()
        except DOCKER_ERRORS as e:
            raise translate(e, f"inspecting {self.resource}") from e
        pid = int(self.container.attrs.get("State", {}).get("Pid") or 0)
        return pid or None

    def _cgroup(self) -> dict[str, Any]:
        try:
            raw = self.api.stats(self.container.id, stream=False, one_shot=True)
        except DOCKER_ERRORS as e:
            raise translate(e, f"stats of {self.resource}") from e
        return raw.get("memory_stats") or {}

    def _runtime_processes(self, pid: int) -> list[tuple[str, Any]]:
        """(role, psutil.Process) of what the runtime runs beside the workload: runc leaves only the shim."""
        import psutil

        parent = psutil.Process(pid).parent()
        return [("shim", parent)] if parent is not None and "shim" in parent.name() else []

    def memory(self) -> MemorySample:
        """The cgroup's usage is the workload's own memory; the runtime's overhead is its processes."""
        import psutil

        pid = self.pid()
        if pid is None:
            raise BackendError(f"{self.name}: the container has no process to measure (not running)")
        procs = []
        try:
            for role, p in self._runtime_processes(pid):
                full = p.memory_full_info()
                procs.append(ProcessMemory(role, p.pid, full.rss, full.uss, getattr(full, "pss", None)))
        except psutil.AccessDenied as e:
            raise CapabilityMissing(
                f"the {self.runtime} runtime's processes are not readable by this user ({e})",
                hint="run vmlab as root to measure the runtime's own memory",
            ) from e
        except psutil.Error as e:
            raise BackendError(f"{self.name}: its runtime processes vanished while measured ({e})") from e
        mem = self._cgroup()
        cache = int((mem.get("stats") or {}).get("cache") or 0)
        return MemorySample(
            processes=tuple(procs),
            method=self.memory_method,
            workload_bytes=int(mem.get("usage") or 0),
            extra={"cgroup_usage": int(mem.get("usage") or 0), "cgroup_cache": cache},
        )

    memory_method = "the runtime's shim process RSS; cgroup usage is the workload's own memory"

    def trap_counter(self) -> TrapCounter:
        """System calls counted by strace (from the host as root, else inside the container)."""
        from vmlab.backends.docker.strace import StraceCounter

        return StraceCounter(self)

    def shell_argv(self) -> list[str]:
        """`docker exec -it` with /bin/sh (runc and runsc alike: Docker picks the OCI runtime)."""
        import shutil

        from vmlab.errors import NotAvailable

        if shutil.which("docker") is None:
            raise NotAvailable("the docker CLI is not installed", hint="apt-get install docker.io")
        return ["docker", "exec", "-it", self.resource, "/bin/sh"]

    def console_tail(self, lines: int = 20) -> list[str]:
        try:
            text = self.container.logs(tail=lines).decode("utf-8", "replace")
        except DOCKER_ERRORS:
            return []
        return [str(line) for line in text.splitlines()[-lines:]]

    _start_lost_containerd = False  # containerd died while Docker started this container

    def _destroy(self) -> None:
        with deferred_interrupts():
            remove_container(self.backend.client, self.resource)
            if self._start_lost_containerd and not remove_containerd_leftovers(self.container.id):
                raise ContainerdGone(
                    f"containerd died while it started {self.resource} and may keep its record and shim",
                    hint=containerd_leftover_commands(self.container.id),
                )
