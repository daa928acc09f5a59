"""The `podman` runtime: containers under rootless Podman, for a normal user with no docker group
(which is as good as root on a shared machine). The image is the tiny guest's rootfs.tar, imported
with `podman import` into the user's own store (never pulled); containers run with no network.

Podman has no daemon: every operation is one `podman` command, and labels vmlab.* on each container
are the only state `ls` and `down` need. As root, Podman 4.3's runc fails to set rlimits here
("error setting rlimit type 6/7: operation not permitted", also with `--ulimit host`), so the runtime
serves normal users and says so in one line for root (docker serves root). Rootless Podman on a
cgroup v1 host has no cgroup of its own: the workload's memory is its processes' RSS, and --memory is
refused there by Podman itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from vmlab.backends.base import (
    ExecResult,
    InstanceBase,
    InstanceSpec,
    Kind,
    NoOptions,
    Record,
    as_argv,
    container_labels,
    ensure_name_free,
    resource_name,
    runtime_options,
)
from vmlab.backends.capabilities import CapabilityMissing, MemorySample, ProcessMemory, TrapCounter
from vmlab.backends.context import RunContext
from vmlab.backends.podman.probe import INSTALL, refusal
from vmlab.backends.podman.probe import podman as _podman
from vmlab.backends.readiness import CONTAINER_LADDER, climb
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, NotAvailable
from vmlab.images.model import ImageInfo

RUNTIME = "podman"


def listing_scopes(uri: str | None) -> list[RunContext]:
    """Nothing to look at where podman cannot serve this user (root, or not installed): it cannot have
    made anything here, so `ls` and `down` stay silent about it rather than warn on every call."""
    return [] if refusal() is not None else [RunContext(uri=uri)]


def open_runtime(ctx: RunContext) -> PodmanBackend:
    refused = refusal()
    if refused is not None:
        raise refused
    return PodmanBackend()


def ensure_image(image: ImageInfo) -> str:
    """`podman import` of the image's rootfs.tar unless the user's store has it; returns its tag."""
    tag = image.docker_tag
    exists = subprocess.run(["podman", "image", "exists", tag], capture_output=True, check=False)
    if exists.returncode == 0:
        return tag
    # "INSTRUCTION VALUE": podman splits at the first space, so the JSON array may hold spaces
    changes = [
        f"LABEL vmlab.image={image.name}",
        f"LABEL vmlab.digest={image.digest}",
        "CMD " + json.dumps(image.manifest.container_cmd),
    ]
    args = [a for c in changes for a in ("--change", c)]
    _podman("import", *args, str(image.rootfs_tar), tag, timeout=600)
    return tag


class PodmanBackend:
    kind: Kind = "container"
    runtime = RUNTIME

    def __init__(self) -> None:
        self._created: list[PodmanInstance] = []

    def create(self, spec: InstanceSpec) -> PodmanInstance:
        t0 = time.monotonic()
        from vmlab.images import get_image

        runtime_options(NoOptions, spec.options, self.runtime)  # podman publishes no ports: none
        image = get_image(spec.image, verify="quick")
        ensure_name_free(self, spec.name, spec.run_id if spec.name_scope == "run" else None)
        tag = ensure_image(image)
        rname = resource_name(spec.run_id, spec.name)
        labels = container_labels(spec, self.kind, self.runtime, image)
        args = ["create", "--name", rname, "--network", "none", "--ulimit", "host"]
        args += [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        if spec.memory_mib is not None:
            args += ["--memory", f"{spec.memory_mib}m"]
        with deferred_interrupts():
            cid = _podman(*args, tag).strip()
            inst = PodmanInstance(self, rname, spec.name, cid, t0, spec.ready_timeout_s)
            self._created.append(inst)
        inst.mark("created")
        return inst

    def list_owned(self) -> list[Record]:
        out = _podman("ps", "-a", "--filter", "label=vmlab.owner", "--format", "json")
        rows: list[dict[str, Any]] = json.loads(out or "[]") or []
        return [
            _record(r, self) for r in rows if (r.get("Labels") or {}).get("vmlab.runtime") == self.runtime
        ]

    def attach(self, record: Record) -> PodmanInstance:
        cid = str(record.extra.get("container_id", record.resource))
        inst = PodmanInstance(self, record.resource, record.name, cid, time.monotonic(), 60.0)
        inst.ladder.clear()
        return inst

    def destroy_record(self, record: Record) -> None:
        _remove(record.resource)

    def cleanup_created(self) -> None:
        for inst in reversed(self._created):
            inst.destroy()

    def close(self) -> None:
        pass


def _remove(resource: str) -> None:
    """Force-remove at once (`-t 0`: no grace period); one that is gone already is no error."""
    _podman("rm", "--force", "--ignore", "--time", "0", resource)


def _record(row: dict[str, Any], backend: PodmanBackend) -> Record:
    labels = row.get("Labels") or {}
    started = row.get("StartedAt") or 0
    state = str(row.get("State", ""))
    uptime = round(time.time() - float(started), 1) if state == "running" and started else None
    names = row.get("Names") or [""]
    return Record(
        name=labels.get("vmlab.name", ""),
        kind=backend.kind,
        runtime=backend.runtime,
        run_id=labels.get("vmlab.run_id", ""),
        resource=str(names[0]),
        state=state,
        lab=labels.get("vmlab.lab", ""),
        accel="none",
        address="(network none)",
        created_at=labels.get("vmlab.created_at", ""),
        uptime_s=uptime,
        image=f"{labels.get('vmlab.image', '')}:{labels.get('vmlab.image_digest', '')[:12]}",
        home=labels.get("vmlab.home", ""),
        extra={**labels, "container_id": row.get("Id", "")},
    )


class PodmanInstance(InstanceBase):
    kind: Kind = "container"
    runtime = RUNTIME
    accel = "none"
    accel_reason = "containers share the host kernel (user namespaces, no hypervisor)"
    stages = CONTAINER_LADDER.names

    def __init__(
        self, backend: PodmanBackend, resource: str, name: str, cid: str, t0: float, ready_timeout_s: float
    ) -> None:
        super().__init__(name, resource)
        self.ladder["create_called"] = t0
        self.backend = backend
        self.cid = cid
        self.ready_timeout_s = ready_timeout_s

    def start(self) -> None:
        with deferred_interrupts():
            _podman("start", self.resource)

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """The container ladder: `running` at the time podman recorded the start (its own clock,
        carried over to time.monotonic), `first_exec` when the first exec returned."""
        climb(
            self,
            CONTAINER_LADDER.ready,
            deadline=time.monotonic() + (timeout_s or self.ready_timeout_s),
            abort=self._exited,
            prefix=self.name,
            stamp=self.mark,
        )

    def _inspect(self, template: str) -> str:
        return _podman("inspect", "--type", "container", "--format", template, self.resource).strip()

    def _exited(self) -> str | None:
        status = self._inspect("{{.State.Status}}")
        return f"the container exited ({status})" if status in ("exited", "stopped", "dead") else None

    # --- the ladder's probes (readiness.ContainerSteps) --------------------------------------------

    def start_event(self) -> float | None:
        nanos = self._inspect("{{.State.StartedAt.UnixNano}}")
        if not nanos.lstrip("-").isdigit() or int(nanos) <= 0:
            return None
        happened = int(nanos) / 1e9
        now_wall, now_mono = time.time(), time.monotonic()
        return now_mono - max(0.0, now_wall - happened)

    def first_exec_ok(self) -> bool | None:
        return True if self.exec(["true"], timeout=10).ok else None

    # --- use ---------------------------------------------------------------------------------------

    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult:
        argv = as_argv(cmd)
        t0 = time.monotonic()
        try:
            p = subprocess.run(
                ["podman", "exec", self.resource, *argv],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise BackendError(f"exec in {self.resource} did not end within {timeout:g} s") from e
        return ExecResult(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)

    def pid(self) -> int | None:
        pid = self._inspect("{{.State.Pid}}")
        return int(pid) if pid.isdigit() and int(pid) > 0 else None

    def memory(self) -> MemorySample:
        """conmon (podman's per-container monitor) is the runtime's overhead; with no cgroup of its
        own (rootless on cgroup v1), the workload is the RSS of the container's processes."""
        import psutil

        conmon = self._inspect("{{.State.ConmonPid}}")
        pid = self.pid()
        if not conmon.isdigit() or pid is None:
            raise CapabilityMissing(f"{self.name} is not running: no memory to measure")
        try:
            full = psutil.Process(int(conmon)).memory_full_info()
            procs = (ProcessMemory("conmon", int(conmon), full.rss, full.uss, getattr(full, "pss", None)),)
            init = psutil.Process(pid)
            workload = sum(p.memory_info().rss for p in [init, *init.children(recursive=True)])
        except psutil.AccessDenied as e:
            raise CapabilityMissing(f"podman's processes are not readable by this user ({e})") from e
        except psutil.Error as e:
            raise BackendError(f"{self.name}: its processes vanished while measured ({e})") from e
        return MemorySample(
            processes=procs,
            method="conmon's RSS is overhead; the workload is its processes' RSS (no cgroup of its own)",
            workload_bytes=workload,
        )

    def trap_counter(self) -> TrapCounter:
        """System calls counted by strace inside the container (the image carries it): root in the
        user's namespace may trace its own children there; the host user may not trace them."""
        return InsideStraceCounter(self)

    def shell_argv(self) -> list[str]:
        if shutil.which("podman") is None:
            raise NotAvailable("podman is not installed", hint=INSTALL)
        return ["podman", "exec", "-it", self.resource, "/bin/sh"]

    def console_tail(self, lines: int = 20) -> list[str]:
        try:
            return _podman("logs", "--tail", str(lines), self.resource).splitlines()[-lines:]
        except BackendError:
            return []

    def _destroy(self) -> None:
        with deferred_interrupts():
            _remove(self.resource)


class InsideStraceCounter:
    """The container's system calls per phase, by strace inside it (`podman exec C strace -f -c sh -c
    CMD`): the count also holds the shell's own start. Idle: strace attached to the container's init
    from inside for the idle time; where that is refused, the phase is noted as not measured."""

    headline = "total"
    provider = "strace -c -f inside the container (podman exec, the workload as its child)"

    def __init__(self, inst: PodmanInstance) -> None:
        from vmlab.backends.counters import IN_CONTAINER_STRACE

        self.inst = inst
        self.strace = IN_CONTAINER_STRACE
        if not inst.exec(["/bin/sh", "-c", f"test -x {self.strace}"], timeout=30).ok:
            raise CapabilityMissing(
                "counting system calls needs strace inside the container image",
                hint="vmlab image build tiny (its container image carries strace)",
            )
        self.notes = [
            "a container has no VM exits: its workload traps straight into the host kernel",
            "system calls counted inside the container: rootless, the host user may not ptrace it",
        ]

    def snapshot(self) -> dict[str, int] | None:
        return None  # strace counts what it runs; the experiment sums the phases

    def phase(self, name: str, command: str | None, idle_s: float) -> dict[str, int]:
        from vmlab.backends.counters import parse_strace_summary

        if command is None:
            secs = max(1, round(idle_s))
            argv = ["timeout", "-s", "INT", str(secs), self.strace, "-c", "-f", "-p", "1"]
            res = self.inst.exec(argv, timeout=secs + 30)
            if "attached" not in res.stderr:
                why = (res.stderr.strip().splitlines() or [f"exit {res.rc}"])[-1]
                self.notes.append(f"{name} phase not measured: attaching to the init was refused ({why})")
                return {}
            return parse_strace_summary(res.stderr) if "% time" in res.stderr else {"total": 0}
        argv = ["timeout", "-s", "INT", "120", self.strace, "-f", "-c", "-q", "/bin/sh", "-c", command]
        res = self.inst.exec(argv, timeout=150)
        if "% time" not in res.stderr:
            tail = " | ".join(res.stderr.strip().splitlines()[-2:])
            raise BackendError(
                f"strace inside {self.inst.resource} printed no summary (exit {res.rc}): {tail}"
            )
        if res.rc != 0:
            raise BackendError(f"{name} workload in {self.inst.name} exited {res.rc}")
        return parse_strace_summary(res.stderr)

    def close(self) -> None:
        """Nothing to release: each phase's tracer ends with it."""
