"""Step `isolation` of labs/os-virt, and the set-up every step shares (the rootfs, the box, names).

The probes themselves are in probes.py; step `limits` in limits.py, step `cost` in cost.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pydantic import Field

from vmlab.errors import UsageError
from vmlab.labs.step import StepContext, StepParams
from vmlab.osvirt.box import BoxLimits, run_box, run_docker, unpack_rootfs
from vmlab.osvirt.probes import compare, probe_experiment, probe_script
from vmlab.report.model import Experiment, ExperimentEntry

# ---- shared set-up ---------------------------------------------------------------------------------


def rootfs_of(ctx: StepContext) -> Path:
    from vmlab.images.cache import get_image

    return unpack_rootfs(get_image("tiny", verify="quick").rootfs_tar, ctx.scratch / "os-virt" / "rootfs")


def box_of(ctx: StepContext) -> Path:
    box = ctx.inputs.get("box")
    if box is None:
        raise UsageError("no box to run", hint="vmlab lab run os-virt --input box=box.py")
    return box


_counter = [0]


def new_name() -> str:
    _counter[0] += 1
    return f"vmlab-osvirt-{os.getpid()}-{_counter[0]}"


def docker_image() -> str | None:
    """The tiny image's Docker tag (imported now if needed), None without a daemon."""
    if shutil.which("docker") is None:
        return None
    from vmlab.errors import VmlabError
    from vmlab.images.cache import get_image
    from vmlab.images.docker_image import ensure_docker_image

    info = get_image("tiny", verify="quick")
    try:
        ensure_docker_image(info)
    except VmlabError:
        return None
    return info.docker_tag


def runsc_ok() -> bool:
    try:
        out = subprocess.run(
            ["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "runsc" in out.stdout


# ---- step: isolation -------------------------------------------------------------------------------


class IsolationParams(StepParams):
    host_n: int = Field(100, ge=0, le=999999)  # the box's hostname is box-<host_n>
    memory_mib: int = Field(64, ge=16, le=4096)
    pids_max: int = Field(32, ge=8, le=4096)
    cpu_pct: int = Field(50, ge=1, le=400)
    deny: list[str] = Field(default_factory=lambda: ["mkdir", "mkdirat"])
    timeout_s: float = Field(20.0, gt=0, le=300)
    compare: list[str] = Field(default_factory=lambda: ["docker", "runsc"])


def isolation(params: IsolationParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `isolation`: the probes in the student's box, then in Docker and gVisor for comparison."""
    box = box_of(ctx)
    rootfs = rootfs_of(ctx)
    marker = (ctx.scratch / "os-virt" / "host-marker").resolve()
    marker.write_text("a file on the host, outside the box's root\n")
    script = probe_script(marker)
    limits = BoxLimits(
        f"box-{params.host_n}",
        params.memory_mib,
        params.pids_max,
        params.cpu_pct,
        params.deny,
        params.timeout_s,
    )
    ctx.progress("os-virt: probes in your box")
    group: dict[str, Experiment] = {
        "box": probe_experiment(run_box(box, rootfs, limits, ["/bin/sh", "-c", script], new_name()), "box")
    }
    image = docker_image() if params.compare else None
    notes: list[str] = []
    for kind in params.compare:
        if image is None:
            notes.append(f"{kind}: no Docker daemon or tiny image here (make setup; vmlab image build tiny)")
            continue
        if kind == "runsc" and not runsc_ok():
            notes.append("runsc: Docker has no runsc runtime (install gVisor, runsc install)")
            continue
        ctx.progress(f"os-virt: probes in docker run{' --runtime runsc' if kind == 'runsc' else ''}")
        run = run_docker(
            image, ["/bin/sh", "-c", script], new_name(), runtime="runsc" if kind == "runsc" else None
        )
        group[kind] = probe_experiment(run, kind)
    summary = compare(group)
    summary.provenance.notes.extend(notes)
    group["compare"] = summary
    return {ctx.step_id: group}
