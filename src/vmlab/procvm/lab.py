"""Step runners of labs/process-vm: Valgrind as a dynamic binary translator, QEMU user mode across ISAs.

Report layout (dotted paths for lab.toml's checks):

- `counts.<workload>`: lackey's executed counts (`counts.guest_instrs`, `sbs_entered`, ...) and the core's
  `--stats=yes` figures of the same run (`translations`, `guest_bytes`, `host_bytes`, ...), plus
  `none_*` figures of a `--tool=none --stats=yes` run; `values` hold the derived ratios (`reuse`,
  `instrs_per_sb`, `expansion_none`, `expansion_lackey`, `instrumentation_cost`).
- `slowdown.<tool>`: CPU-time slowdown over native per repeat (samples; median in the summary), with
  `stages.cpu_s` / `stages.startup_s` and `values.marginal` (slowdown net of start-up).
- `vex.<variant>`: translations and superblock sizes under `--vex-guest-max-insns=1` and
  `--vex-guest-chase=no`, against the default.
- `qemu-x86_64.<workload>`, `qemu-aarch64.<workload>`: translated blocks, guest/host bytes, block
  executions from `-d in_asm,out_asm,exec,nochain`, and whether the output equals the native one;
  `qemu-time.<variant>`: slowdown over native, chained and with `-d nochain`.
- `observer.<workload>`: the student's tool's counts beside lackey's on the same program.

Counts come from single runs (they are exact and repeat); times from `runs` repeats. Each step attaches
the Valgrind and QEMU logs it parsed.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from pydantic import Field

from vmlab.errors import UsageError
from vmlab.labs.step import StepContext, StepParams
from vmlab.procvm import parse
from vmlab.procvm.runs import VALGRIND_TOOLS, Run, execute, require_ok
from vmlab.procvm.steps import (
    EXTRA,
    PROVIDER,
    attach_log,
    check_names,
    cpu_seconds,
    provenance,
    workload_argv,
)
from vmlab.procvm.workloads import WORKLOADS, workload
from vmlab.report.model import Experiment, ExperimentEntry, Measurement
from vmlab.report.stats import summarize

# ---- counts: lackey, --stats=yes ----------------------------------------------------------------


class CountsParams(StepParams):
    workloads: list[str] = Field(default_factory=lambda: ["loop", "sort", "recurse", "scan", "true"])
    loop_iterations: int = Field(1_000_000, ge=0, description="loop's size: its SB executions")
    extra: bool = Field(False, description="also the `workload` input, as `extra`")


def counts_for(argv: list[str], scratch: Path, tag: str) -> tuple[Experiment, list[Run]]:
    """Lackey with --stats=yes, and none with --stats=yes, on one program: counts and ratios."""
    lk = require_ok(execute("lackey", argv, scratch=scratch, extra=["--stats=yes"], tag=tag))
    nl = require_ok(execute("none", argv, scratch=scratch, extra=["--stats=yes"], tag=tag))
    lc, ls, ns = parse.parse_lackey(lk.log), parse.parse_stats(lk.log), parse.parse_stats(nl.log)
    counts = {**lc.counts(), **ls.counts(), **{f"none_{k}": v for k, v in ns.counts().items()}}
    values: dict[str, float | int | str | bool | None] = {
        "instrs_per_sb": round(lc.instrs_per_sb, 4),
        "ir_per_instr": round(lc.ir_per_instr, 4),
        "reuse": round(lc.sbs_entered / ls.translations, 2) if ls.translations else None,
        "expansion_none": round(ns.expansion, 3),
        "expansion_lackey": round(ls.expansion, 3),
        "instrumentation_cost": round(ls.expansion / ns.expansion, 3) if ns.expansion else None,
        "insns_per_translation": round(ls.insns_per_translation, 3),
        "indir_miss_rate": round(ls.indir_misses / ls.indir_transfers, 4) if ls.indir_transfers else None,
        "argv": " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv)),
    }
    exp = Experiment(
        unit="count",
        provenance=provenance(
            "valgrind lackey --basic-counts=yes --stats=yes; none --stats=yes",
            "guest_instrs..ir_stmts: lackey, executed; translations..discarded: the core, same run",
            "none_*: a --tool=none --stats=yes run of the same program (no instrumentation)",
            "reuse = sbs_entered / translations; expansion = host bytes / guest bytes translated",
        ),
        provider=PROVIDER,
        counts=counts,
        values=values,
        text=lk.stdout,
    )
    return exp, [lk, nl]


def counts(params: CountsParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `counts`: what lackey and the core's statistics say about each workload."""
    names = list(params.workloads) + ([EXTRA] if params.extra and "workload" in ctx.inputs else [])
    check_names(params.workloads, list(WORKLOADS))
    group: dict[str, Experiment] = {}
    for name in names:
        ctx.progress(f"process-vm: lackey and --stats=yes on {name}")
        args = (str(params.loop_iterations),) if name == "loop" else None
        argv = workload_argv(name, "x86_64", ctx, args)
        group[name], runs = counts_for(argv, ctx.scratch / "counts", name)
        if name == "loop" and (m := re.search(r"^loop n=(\d+) ", group[name].text or "", re.M)):
            group[name].values["iterations"] = int(m.group(1))  # what the program says it ran
        for r in runs:
            attach_log(ctx, r, f"{name}.{r.tool}.log")
    return {"counts": group}


# ---- slowdown -----------------------------------------------------------------------------------


class SlowdownParams(StepParams):
    workload: str = "recurse"
    args: list[str] | None = Field(None, description="the workload's arguments; default: its timing size")
    tools: list[str] = Field(default_factory=lambda: list(VALGRIND_TOOLS))
    runs: int = Field(3, ge=1, le=50)


def slowdown(params: SlowdownParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `slowdown`: CPU time under each Valgrind tool over native, gross and net of start-up.

    marginal (the samples) = (t_tool - t_tool(empty)) / (t_native - t_native(empty)), where `empty` is
    the same program with size 0: Valgrind's ~0.2 s start-up (loading the tool, reading debug info,
    translating the dynamic loader) cancels out; gross = t_tool / t_native keeps it.
    """
    check_names(params.tools, VALGRIND_TOOLS)
    w = workload(params.workload)
    if w.source is None:
        raise UsageError(f"workload {w.name!r} has no size to time", hint="pick loop, sort, recurse or scan")
    args = tuple(params.args) if params.args is not None else w.time_args
    empty = tuple("0" for _ in w.time_args)
    argv, argv0 = workload_argv(w.name, "x86_64", ctx, args), workload_argv(w.name, "x86_64", ctx, empty)
    scratch = ctx.scratch / "slowdown"
    ctx.progress(f"process-vm: native {w.name} x{params.runs}")
    native = [require_ok(execute("native", argv, scratch=scratch)) for _ in range(params.runs)]
    native0 = [require_ok(execute("native", argv0, scratch=scratch)) for _ in range(params.runs)]
    t_nat, t_nat0 = statistics.median(cpu_seconds(native)), statistics.median(cpu_seconds(native0))
    group: dict[str, Experiment] = {"native": _timing_exp(native, native0, t_nat, t_nat0, "native")}
    for tool in params.tools:
        ctx.progress(f"process-vm: {tool} on {w.name} x{params.runs}")
        runs = [require_ok(execute(tool, argv, scratch=scratch, tag=w.name)) for _ in range(params.runs)]
        runs0 = [require_ok(execute(tool, argv0, scratch=scratch, tag="empty")) for _ in range(params.runs)]
        if any(r.stdout != native[0].stdout for r in runs):
            raise UsageError(f"{w.name} printed something else under {tool} than natively")
        attach_log(ctx, runs[-1], f"{tool}.log")
        group[tool] = _timing_exp(runs, runs0, t_nat, t_nat0, tool)
    return {"slowdown": group}


def _timing_exp(runs: list[Run], runs0: list[Run], t_nat: float, t_nat0: float, tool: str) -> Experiment:
    """Marginal slowdown per repeat (the headline), gross slowdown in values and the raw CPU times."""
    cpu, cpu0 = cpu_seconds(runs), cpu_seconds(runs0)
    base0 = statistics.median(cpu0)
    net_native = t_nat - t_nat0
    if net_native <= 0:
        raise UsageError(
            f"the timed size runs no longer than the empty one natively ({t_nat:.4f} s)",
            hint="give the workload a larger size (args)",
        )
    factors = [(c - base0) / net_native for c in cpu]
    gross = statistics.median(cpu) / t_nat if t_nat > 0 else None
    wall = [r.wall_s for r in runs]
    return Experiment(
        unit="x native",
        samples=factors,
        summary=summarize(factors),
        provenance=provenance(
            "rusage of the child (user+system CPU time)",
            "samples: (CPU time of a run - median CPU time of the size-0 run under the same tool) / "
            "(median native CPU time - median native CPU time of size 0): start-up removed",
            "values.gross: median CPU time over median native CPU time, start-up included",
        ),
        provider=PROVIDER,
        stages={
            "cpu_s": Measurement(unit="s", samples=cpu, summary=summarize(cpu)),
            "startup_s": Measurement(unit="s", samples=cpu0, summary=summarize(cpu0)),
            "wall_s": Measurement(unit="s", samples=wall, summary=summarize(wall)),
        },
        values={
            "tool": tool,
            "gross": round(gross, 3) if gross is not None else None,
            "native_cpu_s": round(t_nat, 6),
            "argv": " ".join([Path(runs[0].argv[0]).name, *runs[0].argv[1:]]),
        },
        text=runs[0].stdout,
    )


# ---- VEX knobs ----------------------------------------------------------------------------------

VEX_VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "max-insns-1": ("--vex-guest-max-insns=1",),
    "no-chase": ("--vex-guest-chase=no",),
}


class VexParams(StepParams):
    workload: str = "recurse"
    variants: list[str] = Field(default_factory=lambda: list(VEX_VARIANTS))
    runs: int = Field(3, ge=1, le=50)


def vex(params: VexParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `vex`: superblock formation knobs; counts from lackey (+stats), time from --tool=none."""
    check_names(params.variants, list(VEX_VARIANTS))
    w = workload(params.workload)
    argv_count = workload_argv(w.name, "x86_64", ctx)
    argv_time = workload_argv(w.name, "x86_64", ctx, w.time_args)
    scratch = ctx.scratch / "vex"
    group: dict[str, Experiment] = {}
    for variant in params.variants:
        opts = list(VEX_VARIANTS[variant])
        ctx.progress(f"process-vm: {variant} on {w.name}")
        lk = require_ok(
            execute("lackey", argv_count, scratch=scratch, extra=[*opts, "--stats=yes"], tag=variant)
        )
        attach_log(ctx, lk, f"{variant}.lackey.log")
        lc, st = parse.parse_lackey(lk.log), parse.parse_stats(lk.log)
        timed = [
            require_ok(execute("none", argv_time, scratch=scratch, extra=opts, tag=variant))
            for _ in range(params.runs)
        ]
        cpu = cpu_seconds(timed)
        group[variant] = Experiment(
            unit="s",
            samples=cpu,
            summary=summarize(cpu),
            provenance=provenance(
                "valgrind lackey --stats=yes (counts), --tool=none (CPU time)",
                f"options: {' '.join(opts) or '(defaults: --vex-guest-max-insns=50 --vex-guest-chase=yes)'}",
            ),
            provider=PROVIDER,
            counts={**lc.counts(), **st.counts()},
            values={
                "options": " ".join(opts),
                "instrs_per_sb": round(lc.instrs_per_sb, 4),
                "insns_per_translation": round(st.insns_per_translation, 3),
                "reuse": round(lc.sbs_entered / st.translations, 2) if st.translations else None,
            },
            text=lk.stdout,
        )
    return {"vex": group}


# ---- the observer tool --------------------------------------------------------------------------


class ObserverParams(StepParams):
    workloads: list[str] = Field(default_factory=lambda: ["loop", "sort", "recurse", "true"])
    extra: bool = Field(True, description="also run the `workload` input, as `extra`")
    jobs: int | None = Field(None, ge=1, description="make -jN (default: all cores)")


def observer(params: ObserverParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `observer`: build the student's tool (cached), run it and lackey on the same programs."""
    from vmlab.procvm.toolbuild import build_tool, default_tool_dir

    check_names(params.workloads, list(WORKLOADS))
    tool_dir = ctx.inputs.get("tool") or default_tool_dir(ctx.lab_dir)
    tb = build_tool(tool_dir, progress=ctx.progress, jobs=params.jobs)
    if tb.log and not tb.cached:
        ctx.attach(tb.log, "observer-build.log")
    names = list(params.workloads) + ([EXTRA] if params.extra and "workload" in ctx.inputs else [])
    group: dict[str, Experiment] = {}
    scratch = ctx.scratch / "observer"
    for name in names:
        ctx.progress(f"process-vm: observer and lackey on {name}")
        argv = workload_argv(name, "x86_64", ctx)
        ob = require_ok(execute("observer", argv, scratch=scratch, valgrind=str(tb.launcher), tag=name))
        lk = require_ok(execute("lackey", argv, scratch=scratch, valgrind=str(tb.launcher), tag=name))
        attach_log(ctx, ob, f"{name}.observer.log")
        attach_log(ctx, lk, f"{name}.lackey.log")
        group[name] = observer_experiment(
            parse.parse_observer(ob.log), parse.parse_lackey(lk.log), ob, lk, tb.key, tb.cached
        )
    return {"observer": group}


def observer_experiment(
    oc: parse.ObserverCounts, lc: parse.LackeyCounts, ob: Run, lk: Run, key: str, cached: bool
) -> Experiment:
    return Experiment(
        unit="count",
        provenance=provenance(
            "the student's observer tool; valgrind lackey --basic-counts=yes (the oracle)",
            "lackey_*: lackey of the same private build on the same program (the installed lackey "
            "differs a little: another preload-library path makes the loader run other code)",
            "guest_instrs over lackey's >= 1: one helper per superblock counts instructions after a "
            "taken side exit too",
        ),
        provider=PROVIDER,
        counts={
            **oc.counts(),
            "lackey_guest_instrs": lc.guest_instrs,
            "lackey_sbs_entered": lc.sbs_entered,
            "lackey_sbs_completed": lc.sbs_completed,
        },
        values={
            "instrs_over_lackey": round(oc.guest_instrs / lc.guest_instrs, 6) if lc.guest_instrs else None,
            "sbs_over_lackey": round(oc.sbs_entered / lc.sbs_entered, 6) if lc.sbs_entered else None,
            "same_output": ob.stdout == lk.stdout,
            "tool_key": key,
            "build_cached": cached,
        },
        text=ob.stdout,
    )
