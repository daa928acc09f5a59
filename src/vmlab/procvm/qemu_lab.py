"""The process-vm lab's QEMU user-mode step: one workload's translated blocks, guest and host bytes and
block executions under qemu-x86_64 and qemu-aarch64 (`-d in_asm,out_asm,exec,nochain`), and the
slowdown over native, chained and with `-d nochain`."""

from __future__ import annotations

import statistics
from pathlib import Path

from pydantic import Field

from vmlab.labs.step import StepContext, StepParams
from vmlab.procvm import parse
from vmlab.procvm.runs import Run, execute, require_ok
from vmlab.procvm.steps import PROVIDER, attach_log, check_names, cpu_seconds, provenance, workload_argv
from vmlab.procvm.workloads import WORKLOADS, workload
from vmlab.report.model import Experiment, ExperimentEntry, Measurement
from vmlab.report.stats import summarize


class QemuParams(StepParams):
    workloads: list[str] = Field(default_factory=lambda: ["loop", "sort", "recurse", "scan"])
    time_workload: str = "recurse"
    runs: int = Field(3, ge=1, le=50)


QEMU_TARGET = {"qemu-x86_64": "x86_64-static", "qemu-aarch64": "aarch64"}
QEMU_LOG = ("in_asm", "out_asm", "exec", "nochain")


def qemu(params: QemuParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `qemu`: translated blocks per ISA (same-ISA x86-64, cross-ISA aarch64), and the slowdown."""
    check_names(params.workloads, [n for n, w in WORKLOADS.items() if w.source])
    scratch = ctx.scratch / "qemu"
    out: dict[str, ExperimentEntry] = {}
    for tool, target in QEMU_TARGET.items():
        group: dict[str, Experiment] = {}
        for name in params.workloads:
            ctx.progress(f"process-vm: {tool} -d {','.join(QEMU_LOG)} on {name}")
            native = require_ok(execute("native", workload_argv(name, "x86_64", ctx), scratch=scratch))
            run = require_ok(
                execute(tool, workload_argv(name, target, ctx), scratch=scratch, qemu_log=QEMU_LOG, tag=name)
            )
            attach_log(ctx, run, f"{tool}.{name}.log")
            q = parse.parse_qemu_log(run.log)
            group[name] = Experiment(
                unit="count",
                provenance=provenance(
                    f"{tool} -d {','.join(QEMU_LOG)} -D FILE",
                    "blocks: IN: sections (translations); executions: Trace lines, all of them under "
                    "nochain; host_bytes: sum of OUT: [size=N]",
                ),
                provider=PROVIDER,
                counts=q.counts(),
                values={
                    "instrs_per_block": round(q.instrs_per_block, 3),
                    "expansion": round(q.expansion, 3),
                    "reuse": round(q.executions / q.blocks, 2) if q.blocks else None,
                    "matches_native": run.stdout == native.stdout,
                    "target": target,
                },
                text=run.stdout,
            )
        out[tool] = group
    out["qemu-time"] = _qemu_time(params, ctx, scratch)
    return out


def _qemu_time(params: QemuParams, ctx: StepContext, scratch: Path) -> dict[str, Experiment]:
    w = workload(params.time_workload)
    variants: list[tuple[str, str, str, tuple[str, ...]]] = [
        ("native", "native", "x86_64", ()),
        ("qemu-x86_64", "qemu-x86_64", "x86_64-static", ()),
        ("qemu-aarch64", "qemu-aarch64", "aarch64", ()),
        ("qemu-aarch64-nochain", "qemu-aarch64", "aarch64", ("nochain",)),
    ]
    samples: dict[str, list[Run]] = {}
    for key, tool, target, dlog in variants:
        ctx.progress(f"process-vm: {key} on {w.name} x{params.runs}")
        argv = workload_argv(w.name, target, ctx, w.time_args)
        samples[key] = [
            require_ok(execute(tool, argv, scratch=scratch, extra=["-d", *dlog] if dlog else []))
            for _ in range(params.runs)
        ]
    t_nat = statistics.median(cpu_seconds(samples["native"]))
    group: dict[str, Experiment] = {}
    for key, runs in samples.items():
        factors = [c / t_nat for c in cpu_seconds(runs)] if t_nat > 0 else [0.0 for _ in runs]
        group[key] = Experiment(
            unit="x native",
            samples=factors,
            summary=summarize(factors),
            provenance=provenance(
                "rusage of the child (user+system CPU time)",
                "samples: CPU time over the median native CPU time of the dynamic x86-64 build",
            ),
            provider=PROVIDER,
            stages={
                "cpu_s": Measurement(
                    unit="s", samples=cpu_seconds(runs), summary=summarize(cpu_seconds(runs))
                )
            },
            values={"variant": key, "matches_native": runs[0].stdout == samples["native"][0].stdout},
            text=runs[0].stdout,
        )
    return group
