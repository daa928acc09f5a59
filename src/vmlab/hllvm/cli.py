"""`vmlab hllvm jit|verify|gc|pyspec`: the HLL-VM lab's measurements from the command line.

Only typer is imported at module level (the CLI's start-up must not pay for the lab); results go to
stdout (a table, or JSON with --json), progress and errors to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from vmlab.report.model import Experiment

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")]


def register(app: typer.Typer) -> None:
    """Add the `hllvm` group to vmlab's CLI (lab.toml: cli = "vmlab.hllvm.cli:register")."""
    group = typer.Typer(
        help="High-level-language VMs: JVM tiers, JIT events, the verifier, GC; CPython's adaptive "
        "interpreter.",
        no_args_is_help=True,
    )
    group.command("jit")(jit)
    group.command("verify")(verify)
    group.command("gc")(gc)
    group.command("pyspec")(pyspec)
    app.add_typer(group, name="hllvm")


def _progress() -> Any:
    from vmlab.cli.output import progress_printer

    return progress_printer()


def _dump(experiments: dict[str, Any]) -> dict[str, Any]:
    from pydantic import BaseModel

    def one(v: Any) -> Any:
        if isinstance(v, BaseModel):
            return v.model_dump(mode="json", exclude_defaults=True)
        return {k: one(x) for k, x in v.items()}

    return {k: one(v) for k, v in experiments.items()}


def _med(e: Experiment) -> str:
    return f"{e.summary.median:,.2f}" if e.summary else "-"


def _table(*columns: str) -> Any:
    from rich.table import Table

    return Table(*columns, box=None, pad_edge=False)


def jit(
    iters: Annotated[int, typer.Option(min=1000, help="Loop iterations per repetition.")] = 1_000_000,
    repeats: Annotated[int, typer.Option(min=2, help="Repetitions per JVM run.")] = 12,
    warmup: Annotated[int, typer.Option(min=0, help="Repetitions left out of the medians.")] = 4,
    json_out: JsonOpt = False,
) -> None:
    """Interpreter vs C1 vs C2 vs tiered, JIT events of the hot loop, inline caches."""
    from vmlab.cli.output import emit_json, errors_to_exit, out
    from vmlab.errors import UsageError
    from vmlab.hllvm import LAB, measure
    from vmlab.hllvm.jvm import compile_workloads
    from vmlab.labs.catalog import lab_dir

    with errors_to_exit():
        if warmup >= repeats:
            raise UsageError(f"--warmup ({warmup}) must be below --repeats ({repeats})")
        progress = _progress()
        wl = compile_workloads(lab_dir(LAB) / "java")
        modes = measure.jit_modes(
            wl, iters=iters, repeats=repeats, warmup=warmup, modes=list(measure.MODES), progress=progress
        )
        events = measure.jit_events(wl, iters=iters, repeats=6, progress=progress)
        calls = measure.inline_caches(wl, iters=2 * iters, repeats=repeats, warmup=warmup, progress=progress)
    result = {
        "jit-modes": modes.experiments,
        "jit-events": events.experiments["events"],
        "jit-thresholds": events.experiments["thresholds"],
        "inline-caches": calls.experiments,
    }
    if json_out:
        emit_json(_dump(result))
        return
    t = _table("mode", "flags", "ns/iter", "min", "max", "first rep")
    for mode, e in modes.experiments.items():
        t.add_row(
            mode,
            str(e.values.get("flags") or "(default)"),
            _med(e),
            f"{min(e.samples):.2f}",
            f"{max(e.samples):.2f}",
            f"{e.series['ns_per_iter'][0]:.2f}",
        )
    out.print(t)
    ev = events.experiments["events"]
    out.print("\nHotLoop::loop under tiered compilation (-XX:+PrintCompilation):", highlight=False)
    t = _table("tier", "first compile ms", "first OSR ms", "compiles", "OSR")
    for tier in ("tier1", "tier2", "tier3", "tier4"):
        t.add_row(
            tier,
            str(ev.values.get(f"first_compile_ms_{tier}", "-")),
            str(ev.values.get(f"first_osr_ms_{tier}", "-")),
            str(ev.counts[f"compiles_{tier}"]),
            str(ev.counts[f"osr_{tier}"]),
        )
    out.print(t)
    out.print(f"made not entrant: {ev.counts['not_entrant']}", highlight=False)
    th = events.experiments["thresholds"].values
    names = (
        "Tier3InvocationThreshold",
        "Tier4InvocationThreshold",
        "Tier3BackEdgeThreshold",
        "CompileThreshold",
    )
    shown = ", ".join(f"{k.removesuffix('Threshold')} {th[k]}" for k in names if k in th)
    out.print(f"thresholds: {shown}", highlight=False)
    out.print("\nInterface call site by number of receiver classes:", highlight=False)
    t = _table("site", "classes", "ns/call", "inlined (hot)")
    for name, e in calls.experiments.items():
        inlined = str(e.values.get("inlined_hot") or ("virtual call" if e.counts["virtual_call"] else "-"))
        t.add_row(name, str(e.counts["receivers"]), _med(e), inlined.replace("CallSite$", ""))
    out.print(t)


def verify(
    file: Annotated[Path, typer.Argument(help="A Jasmin .j file (assembled first) or a .class file.")],
    json_out: JsonOpt = False,
) -> None:
    """Load a class in the JVM: accepted, or rejected with the verifier's message (exit 0 either way)."""
    from vmlab.cli.output import emit_json, errors_to_exit, out
    from vmlab.hllvm.verify import verify_file

    with errors_to_exit():
        verdicts = verify_file(file)
    if json_out:
        emit_json([v.as_dict() for v in verdicts])
        return
    for v in verdicts:
        head = f"{v.source}: class {v.class_name} (class-file version {v.major}): {v.status}"
        out.print(head, highlight=False, markup=False)
        if v.status == "rejected":
            out.print(f"  {v.error}: {v.message}", highlight=False, markup=False)
            if v.reason:
                out.print(f"  reason: {v.reason}", highlight=False, markup=False)
        elif v.stdout:
            out.print(
                "  output: " + v.stdout.strip().replace("\n", " | ")[:200], highlight=False, markup=False
            )
        for note in v.notes:
            out.print(f"  note: {note}", highlight=False, markup=False)
        if v.expect is not None:
            met = "met" if v.expect_met else "NOT met"
            out.print(f"  expectation '{v.expect}': {met}", highlight=False, markup=False)


def gc(
    collector: Annotated[str, typer.Option(help="G1, Serial or Parallel.")] = "G1",
    heap_mb: Annotated[int, typer.Option(min=16, help="-Xmx in MiB.")] = 64,
    iters: Annotated[int, typer.Option(min=1000, help="Allocations per repetition.")] = 3_000_000,
    repeats: Annotated[int, typer.Option(min=1)] = 4,
    json_out: JsonOpt = False,
) -> None:
    """GC pauses of the allocation loop (-Xlog:gc), and class loading with and without CDS."""
    from vmlab.cli.output import emit_json, errors_to_exit, out
    from vmlab.errors import UsageError
    from vmlab.hllvm import LAB, measure
    from vmlab.hllvm.jvm import compile_workloads
    from vmlab.labs.catalog import lab_dir

    with errors_to_exit():
        if collector not in ("G1", "Serial", "Parallel"):
            raise UsageError(f"unknown collector {collector!r}", hint="--collector G1|Serial|Parallel")
        progress = _progress()
        wl = compile_workloads(lab_dir(LAB) / "java")
        pauses = measure.gc_pauses(
            wl, iters=iters, repeats=repeats, heap_mb=heap_mb, collector=collector, progress=progress
        )
        loading = measure.class_loading(wl, runs=3, progress=progress)
    if json_out:
        emit_json(_dump({"gc": pauses.experiments["pauses"], "class-loading": loading.experiments}))
        return
    e = pauses.experiments["pauses"]
    out.print(
        f"{e.values['collector']}, -Xmx{heap_mb}m: {e.counts['pauses']} pauses, "
        f"total {e.values['total_pause_ms']} ms, median {_med(e)} ms, max {e.values['max_pause_ms']} ms",
        highlight=False,
    )
    records = (e.text or "").splitlines()
    for line in records[:12]:
        out.print(f"  {line}", highlight=False, markup=False)
    if len(records) > 12:
        out.print(f"  ... {len(records) - 12} more (--json for all)", highlight=False)
    out.print(f"causes: {e.values['causes']}", highlight=False)
    out.print("\nClass loading to run a trivial program (-Xlog:class+load):", highlight=False)
    t = _table("archive", "classes", "from CDS", "from jrt", "start-up ms")
    for name, x in loading.experiments.items():
        t.add_row(name, str(x.counts["loaded"]), str(x.counts["cds"]), str(x.counts["jrt"]), _med(x))
    out.print(t)


def pyspec(
    warmup: Annotated[int, typer.Option(min=1, help="Calls before the second disassembly.")] = 20,
    depth: Annotated[int, typer.Option(min=5, max=27, help="fib(depth) for the tracing cost.")] = 18,
    json_out: JsonOpt = False,
) -> None:
    """CPython's specialising interpreter: instructions before/after warm-up, tracing cost."""
    import textwrap

    from vmlab.cli.output import emit_json, errors_to_exit, out
    from vmlab.hllvm import pyspec as ps

    with errors_to_exit():
        _progress()("hll-vm: running the CPython child")
        spec, tracing = ps.experiments(ps.run_child(warmup=warmup, depth=depth))
    if json_out:
        emit_json(_dump({"pyspec": spec, "py-tracing": tracing}))
        return
    for name, e in spec.items():
        verdict = {True: "as expected", False: "NOT as expected", None: "no pinned names"}[
            e.values.get("expected_found")  # type: ignore[index]
        ]
        out.print(
            f"{name}: {e.counts['instructions']} instructions, {e.counts['specialised']} specialised, "
            f"{e.counts['executed']} executed for n={e.counts['count_n']} ({verdict})",
            highlight=False,
        )
        new = textwrap.fill(
            f"new after warm-up: {e.values['new_after_warmup']}",
            width=78,
            initial_indent="  ",
            subsequent_indent="    ",
        )
        out.print(new, highlight=False, markup=False)
    plain = tracing["plain"].summary
    t = _table("hook", "ns/call", "x plain")
    for mode, e in tracing.items():
        ratio = e.summary.median / plain.median if e.summary and plain else float("nan")
        t.add_row(mode, _med(e), f"{ratio:.1f}")
    out.print(f"\nfib({depth}): cost of instrumentation per Python call", highlight=False)
    out.print(t)
