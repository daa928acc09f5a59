"""The compare step's parameters, declared once: lab.toml's `params`, `--set compare.KEY=VALUE` and
`vmlab compare`'s options all arrive here, and every default lives in this model.

The experiment names are the package's `ExperimentName`; the kinds are the runtime registry's
(`INSTANCE_KINDS`), so a kind added there is measurable here without an edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from vmlab.backends.base import InstanceSpec
from vmlab.backends.context import Accel, RunContext
from vmlab.labs.step import StepParams
from vmlab.runtime_registry import INSTANCE_KINDS
from vmlab.systemvm import EXPERIMENTS, ExperimentName

PHASES = ("before", "idle", "io", "cpu", "after")


@dataclass(frozen=True)
class Workloads:
    """Shell commands run inside every kind. Only the I/O sink differs, and the runtime names it: a
    guest writes to its serial device (device I/O traps to the VMM), a container or sandbox to
    /dev/null (it has no device; the system call is its trap)."""

    io_lines: int = 3000
    cpu_iterations: int = 20000

    def io(self, sink: str) -> str:
        return f"dd if=/dev/zero bs=64 count={self.io_lines} 2>/dev/null | od -v > {sink}"

    def cpu(self) -> str:
        return f"i=0; while [ $i -lt {self.cpu_iterations} ]; do i=$((i+1)); done; echo $i"

    @staticmethod
    def touch(mib: int) -> str:
        """Fill K MiB of RAM-backed file system: tmpfs in both (/dev/shm if mounted, else the initramfs)."""
        return (
            f"d=/dev/shm; [ -w $d ] && grep -q ' /dev/shm ' /proc/mounts || d=/tmp; "
            f"dd if=/dev/zero of=$d/vmlab-touch bs=1048576 count={mib} 2>/dev/null && echo ok"
        )


class CompareParams(StepParams):
    """What one compare run measures and how (the one declaration of compare's options)."""

    runs: int = Field(5, ge=1, le=100)  # cold starts per kind
    image: str = "tiny"
    accel: Accel = "auto"
    memory_mib: int | None = Field(None, ge=16)  # guest memory; None: the image's
    only: list[ExperimentName] = Field(default_factory=lambda: list(EXPERIMENTS), min_length=1)
    kinds: list[str] = Field(default_factory=lambda: list(INSTANCE_KINDS), min_length=1)
    runtimes: list[str] = Field(default_factory=list)  # runtime names overriding a kind's default
    touch_mib: int = Field(32, ge=1)
    io_lines: int = Field(Workloads.io_lines, ge=1, le=1_000_000)  # 64-byte blocks of the I/O loop
    idle_s: float = Field(2.0, ge=0)
    ready_timeout_s: float = Field(120.0, gt=0)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        bad = [k for k in kinds if k not in INSTANCE_KINDS]
        if bad:
            raise ValueError(f"unknown kind {', '.join(bad)} (choose from {', '.join(INSTANCE_KINDS)})")
        return kinds

    @property
    def workloads(self) -> Workloads:
        return Workloads(io_lines=self.io_lines)

    def run_context(self, uri: str | None = None) -> RunContext:
        """The runtimes' context: `uri` (libvirt; None: vmlab.host.libvirt's choice), runtimes, accel."""
        return RunContext.build(uri, self.runtimes, self.accel)


def run_spec(name: str, run_id: str, lab: str, ctx: RunContext, params: Any, **extra: Any) -> InstanceSpec:
    """An instance a step of the lab starts: the step's `image` and `ready_timeout_s`, the run's
    accelerator, and a name unique within its run only (two runs side by side on one host must not
    collide); `extra` are further InstanceSpec fields (memory_mib, vcpus, options)."""
    return InstanceSpec(
        name=name,
        run_id=run_id,
        image=params.image,
        accel=ctx.accel,
        lab=lab,
        ready_timeout_s=params.ready_timeout_s,
        name_scope="run",
        **extra,
    )
