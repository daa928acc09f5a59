"""The `docker` runtime: containers under Docker with runc, from the same rootfs as the tiny guest
(`docker import`, never pulled). `runsc_backend` reuses it with gVisor as Docker's OCI runtime.

Labels vmlab.* on every container are the only state `ls`/`down` need (vmlab.runtime tells the
runtimes apart). Docker errors, including the connection errors `requests` raises when dockerd is
gone, are translated in `translate()` alone. Containers are created with AutoRemove: if dockerd dies
mid-run, it removes them itself when it comes back, so nothing is left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import docker.errors
import requests

from vmlab.backends.base import (
    ExecResult,
    InstanceBase,
    InstanceSpec,
    Kind,
    Record,
    as_argv,
    container_labels,
    ensure_name_free,
    resource_name,
)
from vmlab.backends.capabilities import CapabilityMissing, MemorySample, ProcessMemory, TrapCounter
from vmlab.backends.context import RunContext
from vmlab.backends.readiness import CONTAINER_LADDER, climb
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, UsageError

log = logging.getLogger("vmlab")
T = TypeVar("T")
LABEL_FILTER = "vmlab.owner"
RUNTIME = "docker"
# what the Docker SDK raises: its own errors, and requests' (an OSError) when the socket is gone
DOCKER_ERRORS: tuple[type[Exception], ...] = (docker.errors.DockerException, requests.RequestException)


class DaemonGone(BackendError):
    """dockerd stopped answering in the middle of an operation."""


class DaemonSlow(BackendError):
    """dockerd is there but did not answer in time, also after retries: a busy host, not a dead one."""


class ContainerdGone(BackendError):
    """dockerd answers but its containerd, which runs the containers, does not (killed or crashed).

    Measured on the CI host (Docker 20.10, containerd 1.6, no systemd): after a SIGKILL of dockerd's
    containerd, `docker ps` and create still answer (dockerd's own state), start and exec fail at once
    ("dial unix .../containerd.sock: connect: connection refused"), `rm -f` fails after ~12 s ("did not
    receive an exit event"); running containers survive (their shims do) and dockerd starts a new
    containerd ~10 s after the old one died.
    """


# make setup starts dockerd only where none answers, so a restart is stop-then-setup without systemd
RESTART_DOCKERD = (
    "restart dockerd (systemctl restart docker; without systemd, stop dockerd and run make setup)"
)
# How long a removal waits for containerd to come back: dockerd restarts it ~10 s after its death.
CONTAINERD_WAIT_S = 40.0
# What dockerd says when its containerd is gone, seen here: the socket refused, a gRPC call cut as it
# ran ("failed to retrieve labels: transport is closing: unavailable", "connection closed:
# unavailable"), a kill with no exit event. ": unavailable" is gRPC's code Unavailable, which dockerd
# appends to what its one gRPC peer, containerd, failed with.
_CONTAINERD_DOWN = ("containerd.sock", "transport is closing", "did not receive an exit event")


def containerd_down(e: Exception) -> bool:
    """Whether a Docker error says containerd (not dockerd) did not answer."""
    text = str(getattr(e, "explanation", None) or e).strip()
    return isinstance(e, docker.errors.APIError) and (
        text.endswith(": unavailable") or any(s in text for s in _CONTAINERD_DOWN)
    )


# A read timeout is dockerd alive but busy (two compares beside a test run did it): idempotent calls
# are tried this many times in all before it is reported, as slow, not dead.
SLOW_ATTEMPTS = 3


def _timed_out(e: Exception) -> bool:
    return isinstance(e, requests.Timeout) or "Read timed out" in str(e)


def _no_answer(e: Exception) -> bool:
    """dockerd itself did not answer: a connection error, never an HTTP answer. docker's APIError is a
    requests.HTTPError too, so an answer saying "connection refused" (containerd's or runsc's socket
    behind dockerd) must not be taken for a dockerd that is gone."""
    if isinstance(e, docker.errors.APIError):
        return False
    return isinstance(e, requests.RequestException) or "Connection refused" in str(e)


def translate(e: Exception, what: str) -> BackendError:
    """The one place Docker errors become vmlab errors (one line, the daemon named when it is gone,
    and a read timeout told apart from a daemon that is gone)."""
    if _timed_out(e):
        limit = re.search(r"read timeout=([\d.]+)", str(e))
        within = f" within {limit.group(1)} s" if limit else " in time"
        return DaemonSlow(
            f"{what}: dockerd did not answer{within} (it runs, but is busy)",
            hint="retry when the host is less busy (other runs, a test suite)",
        )
    if _no_answer(e):
        return DaemonGone(
            f"{what}: dockerd does not answer (it stopped or was killed)",
            hint="start dockerd again (make setup); its containers are removed when it is back",
        )
    if containerd_down(e):
        return ContainerdGone(
            f"{what}: containerd, which runs dockerd's containers, does not answer (it was killed or "
            "crashed; dockerd itself answers)",
            hint=f"dockerd starts containerd again within ~10 s: run again then; if it stays away, "
            f"{RESTART_DOCKERD}",
        )
    explanation = getattr(e, "explanation", None) or str(e)
    return BackendError(f"{what}: {str(explanation).splitlines()[0][:200]}")


def call(fn: Callable[[], T], what: str, attempts: int = SLOW_ATTEMPTS) -> T:
    """fn(), an idempotent Docker call, with errors translated; a read timeout or a dropped connection
    is tried again (up to `attempts` in all) before it is reported: DaemonSlow for a timeout,
    DaemonGone only when dockerd still does not answer. A busy dockerd drops pooled keep-alive
    connections under load (seen with two compares at once: "listing containers failed" though dockerd
    was alive), which is not a dead daemon. Never for calls that change state twice."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DOCKER_ERRORS as e:
            if _no_answer(e) and attempt < attempts:
                log.info("%s: dockerd did not answer (attempt %d of %d): %s", what, attempt, attempts, e)
                time.sleep(0.2 * attempt)
                continue
            err = translate(e, what)
            if isinstance(err, DaemonSlow):
                err = DaemonSlow(
                    err.message.replace(" (it runs", f", {attempts} times (it runs"), hint=err.hint
                )
            raise err from e
    raise AssertionError("unreachable")


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
        if spec.publish_ports:
            kwargs["ports"] = {f"{p}/tcp": ("127.0.0.1", None) for p in spec.publish_ports}
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
        return [_record(c, self) for c in containers if self._owns(c.labels or {})]

    def attach(self, record: Record) -> DockerInstance:
        container = call(lambda: self.client.containers.get(record.resource), f"container {record.resource}")
        inst = self._instance(container, record.name, time.monotonic(), 60.0)
        inst.ladder.clear()
        return inst

    def destroy_record(self, record: Record) -> None:
        _remove(self.client, record.resource)

    def cleanup_created(self) -> None:
        for inst in reversed(self._created):
            with contextlib.suppress(DaemonGone):  # AutoRemove: dockerd removes it when it is back
                inst.destroy()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must not mask the real error
            self.client.close()


def _remove(client: Any, resource: str, wait_s: float = CONTAINERD_WAIT_S) -> None:
    """Force-remove; tried again when dockerd is slow (removing twice is harmless: NotFound), and
    while containerd is away for up to `wait_s` (dockerd restarts it; the container outlives it). If
    it stays away, the error names the exact command that removes what is left."""

    def remove() -> None:
        try:
            client.api.remove_container(resource, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if "is already in progress" not in str(e):
                raise
            _wait_gone(client, resource)

    deadline = time.monotonic() + wait_s
    while True:
        try:
            call(remove, f"removing container {resource} failed")
            return
        except ContainerdGone as e:
            if time.monotonic() >= deadline:
                raise ContainerdGone(
                    f"removing container {resource} failed: containerd, which runs dockerd's "
                    f"containers, did not answer for {wait_s:.0f} s",
                    hint=f"{RESTART_DOCKERD}, then: docker rm -f {resource}",
                ) from e
            log.info("removing %s: containerd does not answer; trying again (%s)", resource, e.message)
            time.sleep(1.0)


# dockerd's own containerd (no systemd): its socket, namespace, and where a task keeps its bundle
CONTAINERD_SOCKET = "/run/docker/containerd/containerd.sock"
CONTAINERD_DIRS = (
    "/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/{id}",
    "/var/lib/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/{id}",
    "/run/docker/containerd/{id}",
)


def _shims_of(container_id: str) -> list[int]:
    import psutil

    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = p.info.get("cmdline") or []
        if "containerd-shim" in (p.info.get("name") or "") and container_id in cmd:
            found.append(p.pid)
    return found


def containerd_leftover_commands(container_id: str) -> str:
    dirs = " ".join(d.format(id=container_id) for d in CONTAINERD_DIRS)
    return (
        f"ctr --address {CONTAINERD_SOCKET} -n moby containers delete {container_id}; "
        f"kill the containerd-shim whose -id is {container_id}; rm -rf {dirs}"
    )


def remove_containerd_leftovers(container_id: str, wait_s: float = CONTAINERD_WAIT_S) -> bool:
    """What containerd keeps of a container whose start it died in, once Docker forgot it: a
    container record, an idle shim, its bundle folders (seen here; dockerd never removes them, not
    even when restarted). Removed through `ctr` as root, once containerd answers; False when that
    could not be done (not root, no ctr, containerd away), so the caller prints the commands."""
    import shutil
    import subprocess

    ctr = shutil.which("ctr")
    if os.geteuid() != 0 or ctr is None or not os.path.exists(CONTAINERD_SOCKET):
        return False
    base = [ctr, "--address", CONTAINERD_SOCKET, "--namespace", "moby"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=30, check=False)

    deadline = time.monotonic() + wait_s
    while run("version").returncode != 0:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    if run("containers", "info", container_id).returncode == 0:
        run("tasks", "delete", "--force", container_id)
        if run("containers", "delete", container_id).returncode != 0:
            return False
    for pid in _shims_of(container_id):  # a shim with no task left: it would wait forever
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        if container_id in f.read():
            return False  # a rootfs still mounted: not ours to tear down blindly
    for d in CONTAINERD_DIRS:
        shutil.rmtree(d.format(id=container_id), ignore_errors=True)
    return True


def _wait_gone(client: Any, resource: str, timeout_s: float = 15.0) -> None:
    """dockerd is removing it already (AutoRemove after its process died): wait until it is gone, so
    a caller that removed it can say nothing is left."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            client.api.inspect_container(resource)
        except docker.errors.NotFound:
            return
        time.sleep(0.1)


def _record(c: Any, backend: DockerBackend) -> Record:
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
        from vmlab.backends.docker_strace import StraceCounter

        return StraceCounter(self)

    def stats(self) -> dict[str, Any]:
        """The raw view (`vmlab` tests and debugging): cgroup memory and the init pid's RSS."""
        import psutil

        mem = self._cgroup()
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "resource": self.resource,
            "pid": self.pid(),
            "cgroup_memory": {
                "usage": mem.get("usage"),
                "limit": mem.get("limit"),
                "max_usage": mem.get("max_usage"),
                "stats": mem.get("stats") or {},
            },
        }
        if out["pid"]:
            try:
                m = psutil.Process(out["pid"]).memory_full_info()
                out["init_process"] = {"rss": m.rss, "uss": m.uss, "pss": getattr(m, "pss", None)}
            except psutil.Error as e:
                out["init_process_error"] = str(e)
        return out

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
            _remove(self.backend.client, self.resource)
            if self._start_lost_containerd and not remove_containerd_leftovers(self.container.id):
                raise ContainerdGone(
                    f"containerd died while it started {self.resource} and may keep its record and shim",
                    hint=containerd_leftover_commands(self.container.id),
                )
