"""A runtime that runs nothing: instances live in this process's memory. Registered only by tests
(`registered()`), it drives the shared code (lifecycle verbs, `vmlab ssh`, compare, a lab step) through
the public protocol, with values a test can derive by hand.

Its exec interprets a few commands instead of running them (nothing touches the host): `echo ARGS`
prints ARGS, `false` and `exit N` fail, compare's touch workload "fills" its MiB, anything else
succeeds silently. Its trap counter counts one trap per command a phase runs; its memory is one
4 MiB shim plus what touch filled.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

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
from vmlab.backends.capabilities import MemorySample, ProcessMemory
from vmlab.backends.context import RunContext
from vmlab.backends.readiness import CONTAINER_LADDER
from vmlab.errors import UsageError
from vmlab.runtime_registry import Health, RuntimeInfo, register, unregister

MIB = 1 << 20
SHIM_RSS = 4 * MIB
SHIM_USS = 3 * MIB
INFO = RuntimeInfo(
    "fake",
    "container",
    __name__,
    "in-memory test runtime",
    probe=f"{__name__}:probe",
    images=False,
)


@dataclass
class State:
    """One instance as the fake "daemon" keeps it: what `ls` reads back and what tests look at."""

    record: Record
    commands: list[str] = field(default_factory=list)
    touched_mib: int = 0


STORE: dict[str, State] = {}  # resource -> state, across every backend object (a daemon's view)


def probe() -> Health:
    return Health("ok", "the fake runtime is always there", data={"instances": len(STORE)})


def open_runtime(ctx: RunContext) -> FakeBackend:
    return FakeBackend()


@contextmanager
def registered(info: RuntimeInfo = INFO) -> Iterator[RuntimeInfo]:
    """The fake runtime in the registry for the duration; its instances are forgotten afterwards."""
    register(info)
    try:
        yield info
    finally:
        unregister(info.name)
        for resource in [r for r, s in STORE.items() if s.record.runtime == info.name]:
            del STORE[resource]


class FakeBackend:
    kind: Kind = "container"
    runtime = "fake"

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self, spec: InstanceSpec) -> FakeInstance:
        from vmlab.paths import vmlab_home

        ensure_name_free(self, spec.name, spec.run_id if spec.name_scope == "run" else None)
        resource = resource_name(spec.run_id, spec.name)
        rec = Record(
            name=spec.name,
            kind=self.kind,
            runtime=self.runtime,
            run_id=spec.run_id,
            resource=resource,
            state="created",
            lab=spec.lab,
            accel="none",
            address="(in memory)",
            created_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
            image=spec.image,
            home=str(vmlab_home()),
        )
        STORE[resource] = State(rec)
        self.created.append(resource)
        inst = FakeInstance(self, STORE[resource])
        inst.mark("created")
        return inst

    def list_owned(self) -> list[Record]:
        return [s.record for s in STORE.values() if s.record.runtime == self.runtime]

    def attach(self, record: Record) -> FakeInstance:
        state = STORE.get(record.resource)
        if state is None:
            raise UsageError(f"{record.resource} is gone")
        inst = FakeInstance(self, state)
        inst.ladder.clear()
        return inst

    def destroy_record(self, record: Record) -> None:
        STORE.pop(record.resource, None)

    def cleanup_created(self) -> None:
        for resource in self.created:
            STORE.pop(resource, None)

    def close(self) -> None:
        pass


class FakeInstance(InstanceBase):
    kind: Kind = "container"
    runtime = "fake"
    accel = "none"
    accel_reason = "nothing runs: the fake runtime"
    stages = CONTAINER_LADDER.names

    def __init__(self, backend: FakeBackend, state: State) -> None:
        super().__init__(state.record.name, state.record.resource)
        self.runtime = backend.runtime
        self.state = state

    def start(self) -> None:
        self.state.record.state = "running"
        self.mark("running")

    def wait_ready(self, timeout_s: float | None = None) -> None:
        self.exec("true").check()
        self.mark("first_exec")

    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult:
        argv = as_argv(cmd)
        text = cmd if isinstance(cmd, str) else shlex.join(cmd)
        self.state.commands.append(text)
        rc, out = 0, ""
        touch = re.search(r"of=\$d/vmlab-touch bs=1048576 count=(\d+)", text)
        words = text.split()
        if touch:
            self.state.touched_mib += int(touch.group(1))
            out = "ok\n"
        elif words[:1] == ["echo"]:
            out = " ".join(words[1:]) + "\n"
        elif words[:1] == ["false"]:
            rc = 1
        elif words[:1] == ["exit"] and len(words) == 2:
            rc = int(words[1])
        return ExecResult(argv=tuple(argv), rc=rc, stdout=out, stderr="", duration_s=0.0)

    def memory(self) -> MemorySample:
        return MemorySample(
            processes=(ProcessMemory("fake-shim", os.getpid(), SHIM_RSS, SHIM_USS),),
            method="fake: one 4 MiB shim; the workload is what touch filled",
            workload_bytes=self.state.touched_mib * MIB,
        )

    def trap_counter(self) -> FakeCounter:
        return FakeCounter(self)

    def pid(self) -> int | None:
        return None

    def shell_argv(self) -> list[str]:
        return ["/bin/echo", f"shell into {self.resource}"]

    def console_tail(self, lines: int = 20) -> list[str]:
        return self.state.commands[-lines:]

    def _destroy(self) -> None:
        STORE.pop(self.resource, None)


class FakeCounter:
    """One trap per command a phase runs (idle runs none)."""

    provider = "fake-commands"
    headline = "commands"

    def __init__(self, inst: FakeInstance) -> None:
        self.inst = inst
        self.notes: list[str] = ["fake: one trap per command"]
        self.total = 0

    def snapshot(self) -> dict[str, int] | None:
        return {"commands": self.total}

    def phase(self, name: str, command: str | None, idle_s: float) -> dict[str, int]:
        if command is None:
            return {"commands": 0}
        self.inst.exec(command).check()
        self.total += 1
        return {"commands": 1}

    def close(self) -> None:
        pass


__all__ = ["INFO", "STORE", "FakeBackend", "FakeInstance", "registered"]
