"""Step `cost` of labs/os-virt (t8): each namespace kind, the whole box with its stages, runc (as root, and
rootless for a normal user), Docker and gVisor."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pydantic import Field

from vmlab.labs.step import StepContext, StepParams
from vmlab.osvirt.box import BoxLimits, run_box, run_docker, unpack_rootfs
from vmlab.osvirt.lab import box_of, docker_image, new_name, rootfs_of, runsc_ok
from vmlab.report.model import Experiment, ExperimentEntry, Measurement, Provenance
from vmlab.report.stats import summarize


class CostParams(StepParams):
    repeats: int = Field(7, ge=1, le=100)
    ns_repeats: int = Field(30, ge=1, le=1000)
    compare: list[str] = Field(default_factory=lambda: ["runc", "docker", "runsc"])
    timeout_s: float = Field(20.0, gt=0, le=300)


BOX_STAGES = (
    ("cgroup_setup", "cgroups"),
    ("cgroup_join", "fork+join"),
    ("unshare", "unshare"),
    ("userns_map", "uid_map"),
    ("fork", "fork pid1"),
    ("uts", "hostname"),
    ("mounts", "mounts"),
    ("pivot_root", "pivot_root"),
    ("proc", "proc"),
    ("net", "loopback"),
    ("caps", "caps"),
    ("seccomp", "seccomp"),
    ("exit", "exec+exit"),
)


def _measure(unit: str, samples: list[float]) -> Measurement:
    return Measurement(unit=unit, samples=samples, summary=summarize(samples))


def _exp(
    unit: str, samples: list[float], backend: str, notes: list[str] | None = None, **kw: object
) -> Experiment:
    return Experiment(
        unit=unit,
        samples=samples,
        summary=summarize(samples),
        provider="vmlab.osvirt",
        provenance=Provenance(backend=backend, notes=notes or []),
        **kw,  # type: ignore[arg-type]
    )


def _ns_costs(repeats: int) -> dict[str, Experiment]:
    from vmlab.osvirt import nscost

    out = subprocess.run(
        [sys.executable, nscost.__file__, str(repeats)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows: dict[str, list[int]] = json.loads(out.stdout)
    fork = rows.pop("fork")
    base = statistics.median(fork)
    group = {"fork": _exp("us", [x / 1000 for x in fork], "fork", ["fork + _exit + waitpid, the baseline"])}
    for kind, samples in rows.items():
        net = [(x - base) / 1000 for x in samples]
        group[kind] = _exp(
            "us", net, kind, [f"fork + unshare({kind}) + _exit + waitpid, minus the fork median"]
        )
    return group


def _runc_bundle(ctx: StepContext, rootfs_tar: Path, runc: str, rootless: bool) -> Path:
    """A bundle of the tiny rootfs running /bin/true; rootless: `runc spec --rootless` (a user
    namespace mapping root to this user) plus a network namespace, like the box's."""
    bundle = ctx.scratch / "os-virt" / ("runc-rootless-bundle" if rootless else "runc-bundle")
    unpack_rootfs(rootfs_tar, bundle / "rootfs")
    if not (bundle / "config.json").exists():
        argv = [runc, "spec", "--bundle", str(bundle), *(["--rootless"] if rootless else [])]
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    spec["hostname"] = "runc"
    namespaces = spec["linux"].setdefault("namespaces", [])
    if not any(n.get("type") == "network" for n in namespaces):
        namespaces.append({"type": "network"})
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))
    return bundle


def _runc(ctx: StepContext, params: CostParams, rootfs_tar: Path, notes: list[str]) -> dict[str, Experiment]:
    """`runc run` of /bin/true: as root the row `runc`, as a normal user `runc-rootless` (skipped with
    the reason in the notes where it cannot run)."""
    from vmlab.paths import system_tool

    runc = system_tool("runc")
    rootless = os.geteuid() != 0
    row = "runc-rootless" if rootless else "runc"
    if runc is None:
        notes.append(f"{row}: runc is not installed (apt-get install runc)")
        return {}
    if rootless:
        from vmlab.host.kernel_features import userns_unmet

        unmet = userns_unmet()
        if unmet is not None:
            notes.append(f"{row}: skipped, {unmet.one_line()}")
            return {}
    ctx.progress(f"os-virt: runc run{' (rootless)' if rootless else ''}, {params.repeats} repeats")
    try:
        bundle = _runc_bundle(ctx, rootfs_tar, runc, rootless)
    except (OSError, subprocess.SubprocessError) as e:
        notes.append(f"{row}: skipped, runc spec failed here: {e}")
        return {}
    state = ctx.scratch / "os-virt" / f"{row}-state"
    samples = []
    for _ in range(params.repeats):
        name = new_name()
        t0 = time.perf_counter_ns()
        try:
            subprocess.run(
                [runc, "--root", str(state), "run", "--bundle", str(bundle), name],
                capture_output=True, timeout=60, check=True,
            )  # fmt: skip
        except subprocess.CalledProcessError as e:
            why = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            notes.append(f"{row}: skipped, runc run failed here: {why[0][:160]}")
            return {}
        finally:
            subprocess.run(
                [runc, "--root", str(state), "delete", "-f", name],
                capture_output=True,
                timeout=60,
                check=False,
            )
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    how = "runc spec --rootless (user namespace) + a network namespace" if rootless else "runc spec"
    return {row: _exp("ms", samples, row, [f"runc run of a bundle made from rootfs.tar ({how}), /bin/true"])}


def cost(params: CostParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `cost`: per-namespace creation cost, then /bin/true in the box, runc, Docker and gVisor."""
    from vmlab.images.cache import get_image

    box = box_of(ctx)
    rootfs = rootfs_of(ctx)
    ctx.progress(f"os-virt: namespace creation, {params.ns_repeats} repeats per kind")
    ns = _ns_costs(params.ns_repeats)
    create: dict[str, Experiment] = {}

    py = []
    for _ in range(params.repeats):
        t0 = time.perf_counter_ns()
        subprocess.run(
            [sys.executable, "-c", "import argparse, ctypes"], capture_output=True, timeout=60, check=False
        )
        py.append((time.perf_counter_ns() - t0) / 1e6)
    create["python"] = _exp(
        "ms", py, "python", ["python -c 'import argparse, ctypes': the box's own start-up"]
    )

    ctx.progress(f"os-virt: /bin/true in your box, {params.repeats} repeats")
    lim = BoxLimits("cost", 64, 64, 50, ["mkdir", "mkdirat"], params.timeout_s)
    times = ctx.scratch / "os-virt" / "times.json"
    walls: list[float] = []
    stages: dict[str, list[float]] = {}
    codes: list[int] = []
    for _ in range(params.repeats):
        run = run_box(box, rootfs, lim, ["/bin/true"], new_name(), times)
        walls.append(run.wall_ns / 1e6)
        codes.append(run.code)
        prev = run.times.get("start")
        for key, label in BOX_STAGES:
            if prev is not None and key in run.times:
                stages.setdefault(label, []).append((run.times[key] - prev) / 1e6)
                prev = run.times[key]
    create["box"] = _exp(
        "ms",
        walls,
        "box",
        ["wall time of python box.py ... -- /bin/true; stages from its --times file (CLOCK_MONOTONIC)"],
        stages={k: _measure("ms", v) for k, v in stages.items()},
        counts={"nonzero_exits": sum(1 for c in codes if c != 0)},
    )

    notes: list[str] = []
    info = get_image("tiny", verify="quick")
    if "runc" in params.compare:
        create |= _runc(ctx, params, info.rootfs_tar, notes)
    image = docker_image() if {"docker", "runsc"} & set(params.compare) else None
    for kind in ("docker", "runsc"):
        if kind not in params.compare:
            continue
        if image is None:
            notes.append(f"{kind}: no Docker daemon here (make setup)")
            continue
        if kind == "runsc" and not runsc_ok():
            notes.append("runsc: Docker has no runsc runtime (runsc install)")
            continue
        ctx.progress(
            f"os-virt: docker run{' --runtime runsc' if kind == 'runsc' else ''}, {params.repeats} repeats"
        )
        samples = []
        for _ in range(params.repeats):
            run = run_docker(image, ["/bin/true"], new_name(), runtime="runsc" if kind == "runsc" else None)
            if run.code != 0:
                raise RuntimeError(f"docker run ({kind}) failed: {run.stderr.strip()[:200]}")
            samples.append(run.wall_ns / 1e6)
        create[kind] = _exp(
            "ms",
            samples,
            kind,
            [f"docker run --rm --network none{' --runtime runsc' if kind == 'runsc' else ''} tiny /bin/true"],
        )
    if notes:
        create["box"].provenance.notes.extend(notes)
    return {"ns-cost": ns, ctx.step_id: create}
