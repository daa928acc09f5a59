"""Containers under Docker, from the same rootfs as the tiny guest (`docker import`, never pulled).

Labels vmlab.* on every container are the only state `ls`/`down` need. Docker errors are translated
in `translate()` alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Sequence
from typing import Any

from vmlab.backends.base import (
    ExecResult,
    InstanceBase,
    InstanceSpec,
    Kind,
    Record,
    as_argv,
    ensure_name_free,
    resource_name,
)
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, UsageError
from vmlab.guest.wait import wait_for

LABEL_FILTER = "vmlab.owner"


def translate(e: Exception, what: str) -> BackendError:
    """The one place Docker errors become vmlab errors."""
    explanation = getattr(e, "explanation", None) or str(e)
    return BackendError(f"{what}: {str(explanation).splitlines()[0][:200]}")


class DockerBackend:
    kind: Kind = "container"

    def __init__(self, client: Any = None) -> None:
        from vmlab.images.docker_image import docker_client

        self.client = client or docker_client()
        self._created: list[DockerInstance] = []

    def create(self, spec: InstanceSpec) -> DockerInstance:
        t0 = time.monotonic()
        from docker.errors import DockerException

        from vmlab.images import get_image
        from vmlab.images.docker_image import ensure_docker_image

        image = get_image(spec.image, verify="quick")
        memory = spec.memory_mib
        if memory is not None and memory < 6:
            raise UsageError(f"--memory {memory} MiB is below Docker's minimum of 6 MiB", hint="--memory 64")
        ensure_name_free(self, spec.name)
        ensure_docker_image(image, self.client)
        rname = resource_name(spec.run_id, spec.name)
        from vmlab.paths import vmlab_home

        labels = {
            "vmlab.owner": os.environ.get("USER", str(os.getuid())),
            "vmlab.name": spec.name,
            "vmlab.home": str(vmlab_home()),
            "vmlab.run_id": spec.run_id,
            "vmlab.lab": spec.lab,
            "vmlab.image": image.name,
            "vmlab.image_digest": image.digest,
            "vmlab.created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        kwargs: dict[str, Any] = {
            "name": rname,
            "labels": labels,
            "detach": True,
            "nano_cpus": int(spec.vcpus * 1e9),
        }
        if memory is not None:
            kwargs["mem_limit"] = f"{memory}m"
        if spec.publish_ports:
            kwargs["ports"] = {f"{p}/tcp": ("127.0.0.1", None) for p in spec.publish_ports}
        else:
            kwargs["network_mode"] = "none"
        with deferred_interrupts():
            try:
                container = self.client.containers.create(image.docker_tag, **kwargs)
            except DockerException as e:
                raise translate(e, f"creating container {rname} failed") from e
            inst = DockerInstance(self, container, spec.name, t0, spec.ready_timeout_s)
            self._created.append(inst)
        inst.mark("created")
        return inst

    def list_owned(self) -> list[Record]:
        from docker.errors import DockerException

        try:
            containers = self.client.containers.list(all=True, filters={"label": LABEL_FILTER})
        except DockerException as e:
            raise translate(e, "listing containers failed") from e
        return [_record(c) for c in containers]

    def attach(self, record: Record) -> DockerInstance:
        from docker.errors import DockerException

        try:
            container = self.client.containers.get(record.resource)
        except DockerException as e:
            raise translate(e, f"container {record.resource} not found") from e
        inst = DockerInstance(self, container, record.name, time.monotonic(), 60.0)
        inst.ladder.clear()
        return inst

    def destroy_record(self, record: Record) -> None:
        _remove(self.client, record.resource)

    def cleanup_created(self) -> None:
        for inst in reversed(self._created):
            inst.destroy()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must not mask the real error
            self.client.close()


def _remove(client: Any, resource: str) -> None:
    from docker.errors import DockerException, NotFound

    try:
        client.api.remove_container(resource, force=True, v=True)
    except NotFound:
        pass
    except DockerException as e:
        if "is already in progress" in str(e):
            return
        raise translate(e, f"removing container {resource} failed") from e


def _record(c: Any) -> Record:
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
        kind="container",
        run_id=labels.get("vmlab.run_id", ""),
        resource=c.name,
        state=status,
        lab=labels.get("vmlab.lab", ""),
        accel="none (namespaces)",
        address=address or "(network none)",
        created_at=labels.get("vmlab.created_at", ""),
        uptime_s=uptime,
        image=f"{labels.get('vmlab.image', '')}:{labels.get('vmlab.image_digest', '')[:12]}",
        home=labels.get("vmlab.home", ""),
        extra=dict(labels),
    )


class DockerInstance(InstanceBase):
    kind: Kind = "container"
    accel = "none"
    accel_reason = "containers share the host kernel (namespaces and cgroups, no hypervisor)"

    def __init__(
        self, backend: DockerBackend, container: Any, name: str, t0: float, ready_timeout_s: float
    ) -> None:
        super().__init__(name, container.name)
        self.ladder["create_called"] = t0
        self.backend = backend
        self.container = container
        self.ready_timeout_s = ready_timeout_s

    def start(self) -> None:
        from docker.errors import DockerException

        try:
            self.container.start()
        except DockerException as e:
            raise translate(e, f"starting {self.resource} failed") from e

    def wait_ready(self, timeout_s: float | None = None) -> None:
        from docker.errors import DockerException

        deadline = time.monotonic() + (timeout_s or self.ready_timeout_s)

        def running() -> bool | None:
            try:
                self.container.reload()
            except DockerException as e:
                raise translate(e, f"inspecting {self.resource}") from e
            return True if self.container.status == "running" else None

        def exited() -> str | None:
            return (
                f"the container exited ({self.container.status})"
                if self.container.status in ("exited", "dead")
                else None
            )

        wait_for(running, deadline=deadline, stage=f"{self.name}: running", abort=exited)
        self.mark("running")
        wait_for(
            lambda: True if self.exec(["true"], timeout=10).ok else None,
            deadline=deadline,
            stage=f"{self.name}: first exec",
            abort=exited,
        )
        self.mark("first_exec")

    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult:
        """docker exec through the API; `timeout` bounds the call on the client socket."""
        from docker.errors import DockerException

        argv = as_argv(cmd)
        t0 = time.monotonic()
        api = self.backend.client.api
        try:
            exec_id = api.exec_create(self.container.id, list(argv), stdout=True, stderr=True)["Id"]
            out, err = api.exec_start(exec_id, demux=True)
            rc = api.exec_inspect(exec_id).get("ExitCode")
        except DockerException as e:
            raise translate(e, f"exec in {self.resource} failed") from e
        return ExecResult(
            argv=argv,
            rc=int(rc if rc is not None else -1),
            stdout=(out or b"").decode("utf-8", "replace"),
            stderr=(err or b"").decode("utf-8", "replace"),
            duration_s=time.monotonic() - t0,
        )

    def pid(self) -> int | None:
        """The container's init process as the host sees it (for strace -p, /proc/PID/...)."""
        from docker.errors import DockerException

        try:
            self.container.reload()
        except DockerException as e:
            raise translate(e, f"inspecting {self.resource}") from e
        pid = int(self.container.attrs.get("State", {}).get("Pid") or 0)
        return pid or None

    def stats(self) -> dict[str, Any]:
        """cgroup memory and CPU via the Docker API (one-shot), plus the init pid's RSS via psutil."""
        from docker.errors import DockerException

        try:
            raw = self.backend.client.api.stats(self.container.id, stream=False, one_shot=True)
        except DockerException as e:
            raise translate(e, f"stats of {self.resource}") from e
        mem = raw.get("memory_stats") or {}
        cpu = (raw.get("cpu_stats") or {}).get("cpu_usage") or {}
        out: dict[str, Any] = {
            "kind": "container",
            "name": self.name,
            "resource": self.resource,
            "pid": self.pid(),
            "cgroup_memory": {
                "usage": mem.get("usage"),
                "limit": mem.get("limit"),
                "max_usage": mem.get("max_usage"),
                "stats": mem.get("stats") or {},
            },
            "cpu_total_ns": cpu.get("total_usage"),
        }
        if out["pid"]:
            import psutil

            try:
                m = psutil.Process(out["pid"]).memory_full_info()
                out["init_process"] = {"rss": m.rss, "uss": m.uss, "pss": getattr(m, "pss", None)}
            except psutil.Error as e:
                out["init_process_error"] = str(e)
        return out

    def console_tail(self, lines: int = 20) -> list[str]:
        from docker.errors import DockerException

        try:
            text = self.container.logs(tail=lines).decode("utf-8", "replace")
        except DockerException:
            return []
        return [str(line) for line in text.splitlines()[-lines:]]

    def _destroy(self) -> None:
        with deferred_interrupts():
            _remove(self.backend.client, self.resource)
