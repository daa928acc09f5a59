"""`vmlab kvm run|programs|source`: the raw-KVM-API VMM from the command line.

Heavy work stays in vmlab.kvmapi; this module parses options, prints, and maps errors to exit codes.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, out

if TYPE_CHECKING:
    from vmlab.kvmapi.guest import Program
    from vmlab.kvmapi.vmm import GuestRun

app = typer.Typer(
    help="A small VMM on the raw KVM API: guest programs, exits by reason, exit cost.", no_args_is_help=True
)


def _program(spec: str, n: int | None, bits: int) -> Program:
    from vmlab.errors import UsageError
    from vmlab.kvmapi.guest import from_file
    from vmlab.kvmapi.programs import BUILTINS, builtin

    if spec in BUILTINS:
        return builtin(spec, n)
    path = Path(spec)
    if path.suffix or path.exists():
        if n is not None:
            raise UsageError("-n applies to built-in programs only", hint="drop -n for a program file")
        return from_file(path, bits=bits)
    raise UsageError(
        f"no built-in program {spec!r} and no such file (known: {', '.join(BUILTINS)})",
        hint="run 'vmlab kvm programs', or pass a .asm/.hex/.bin file",
    )


@app.command("run")
def run(
    program: Annotated[
        str,
        typer.Argument(
            help="A built-in program name (see 'vmlab kvm programs') or a .asm/.s, .hex or .bin file."
        ),
    ],
    n: Annotated[
        int | None,
        typer.Option(
            "--count",
            help=(
                "Count for out/cpuid/mmio/loop/cr3, pages for pages/invlpg/ptwrite, rounds for smp-*; "
                "message length for console-*."
            ),
        ),
    ] = None,
    bits: Annotated[
        int,
        typer.Option(help="Mode for .hex/.bin files: 16 (real), 32 (protected) or 64 (long mode, paging)."),
    ] = 16,
    runs: Annotated[
        int, typer.Option("--runs", "-n", min=1, max=1000, help="Run this many times; times are medians.")
    ] = 1,
    max_exits: Annotated[int, typer.Option(min=1, help="Stop a guest after this many exits.")] = 1_000_000,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.01, help="Stop a guest after this many seconds.")
    ] = 10.0,
    mount_debugfs: Annotated[
        bool,
        typer.Option(
            "--mount-debugfs",
            help="Mount debugfs (root) to read /sys/kernel/debug/kvm as a second counter source.",
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="The KVM device node.")] = "/dev/kvm",
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")] = False,
) -> None:
    """Run a guest program; show its output, the exits by reason, kernel statistics and timing."""
    from vmlab.kvmapi.smp_guests import SMP_BUILTINS
    from vmlab.kvmapi.vmm import Limits, run_program

    if program in SMP_BUILTINS:
        _run_smp(program, n, runs, Limits(max_exits=max_exits, wall_s=timeout), device, json_out)
        return
    with errors_to_exit():
        prog = _program(program, n, bits)
        limits = Limits(max_exits=max_exits, wall_s=timeout)
        results = [run_program(prog, limits=limits, device=device, mount=mount_debugfs) for _ in range(runs)]
    if json_out:
        emit_json(_as_json(prog, results))
        return
    _render(prog, results)


def _run_smp(name: str, n: int | None, runs: int, limits: Any, device: str, json_out: bool) -> None:
    """A two-vCPU program: per-vCPU exits, host CPU time against wall time, the halt counters."""
    from vmlab.kvmapi.smp import run_smp
    from vmlab.kvmapi.smp_guests import smp_builtin

    with errors_to_exit():
        prog = smp_builtin(name, n)
        results = [run_smp(prog, limits=limits, device=device) for _ in range(runs)]
    if json_out:
        walls = [r.wall_ns for r in results]
        emit_json(
            {
                **results[0].as_dict(),
                "rounds": prog.rounds,
                "timing": {
                    "runs": len(results),
                    "wall_ns": walls,
                    "wall_ns_median": statistics.median(walls),
                },
            }
        )
        return
    from rich.table import Table

    r = results[0]
    table = Table("vCPU", "exits seen by the VMM", "host CPU ms", "wall ms", "kernel: halts, injections")
    for v in r.vcpus:
        ks = v.kernel_stats or {}
        kernel = ", ".join(
            f"{k} {ks[k]}"
            for k in (
                "halt_exits",
                "halt_wakeup",
                "halt_successful_poll",
                "irq_injections",
                "directed_yield_attempted",
            )
            if ks.get(k)
        )
        exits = ", ".join(f"{k}: {c}" for k, c in v.exits.most_common())
        table.add_row(
            str(v.index), exits or "none", f"{v.cpu_ns / 1e6:,.1f}", f"{v.wall_ns / 1e6:,.1f}", kernel or "-"
        )
    out.print(table)
    walls = [x.wall_ns for x in results]
    what = f"median of {len(results)} runs" if len(results) > 1 else "1 run; --runs N for a median"
    per = statistics.median(walls) / prog.rounds / 1000
    out.print(f"{prog.rounds} rounds, {per:,.1f} µs per round ({what})", highlight=False)


def _timing(runs: list[GuestRun]) -> dict[str, Any]:
    loop = [r.loop_ns for r in runs]
    per_exit = [r.ns_per_exit for r in runs if r.total_exits]
    return {
        "runs": len(runs),
        "loop_ns_median": statistics.median(loop),
        "loop_ns": loop,
        "ns_per_exit_median": statistics.median(per_exit) if per_exit else None,
    }


def _as_json(prog: Program, runs: list[GuestRun]) -> dict[str, Any]:
    first = runs[0].as_dict()
    return {**first, "bits": prog.bits, "code_bytes": len(prog.code), "timing": _timing(runs)}


MIN_EXITS_FOR_PER_EXIT = 100


def _render(prog: Program, runs: list[GuestRun]) -> None:
    r = runs[0]
    if r.output:
        out.print(r.text, end="" if r.text.endswith("\n") else "\n", markup=False, highlight=False)
    exits = ", ".join(f"{k}: {v}" for k, v in r.exits.most_common())
    out.print(f"exits seen by the VMM: {exits or 'none'}", highlight=False)
    if r.stop == "debug-exit":
        out.print(f"stopped by the debug-exit port with value {r.exit_value}", highlight=False)
    if r.hypercalls:
        out.print(f"hypercalls: {r.hypercalls}", highlight=False)
    if r.kernel_stats is not None:
        shown = ", ".join(f"{k} {v}" for k, v in r.kernel_stats.items() if v)
        out.print(f"kernel ({r.kernel_stats_source}): {shown or 'all zero'}", highlight=False)
    else:
        out.print(f"kernel stats: {r.kernel_stats_source}", highlight=False)
    if r.debugfs is not None:
        shown = ", ".join(f"{k} {v}" for k, v in r.debugfs.items() if v)
        out.print(f"kernel ({r.debugfs_source}): {shown}", highlight=False)
    else:
        err.print(f"[dim]debugfs: {r.debugfs_source}[/]", highlight=False)
    t = _timing(runs)
    what = f"median of {len(runs)} runs" if len(runs) > 1 else "1 run; --runs N for a median"
    # Per-exit time means something only when exits dominate the run: with a handful (cpuid's single
    # hlt, hello's three) the loop time is the guest's own work and set-up, divided by almost nothing.
    per = ""
    if t["ns_per_exit_median"] is not None and r.total_exits >= MIN_EXITS_FOR_PER_EXIT:
        per = f", {t['ns_per_exit_median']:,.0f} ns per exit"
    loop_us = t["loop_ns_median"] / 1000
    out.print(f"time in the KVM_RUN loop: {loop_us:,.1f} µs{per} ({what})", highlight=False)


@app.command("programs")
def programs(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable list.")] = False,
) -> None:
    """List the built-in guest programs and what each one teaches."""
    from vmlab.kvmapi.programs import BUILTINS, TAKES_LENGTH, TAKES_N
    from vmlab.kvmapi.smp_guests import SMP_BUILTINS

    with errors_to_exit():
        items = []
        for name, smp_factory in SMP_BUILTINS.items():
            sp = smp_factory()
            items.append(
                {
                    "name": name,
                    "description": sp.description,
                    "bits": sp.bits,
                    "takes_n": True,
                    "takes_length": False,
                    "vcpus": len(sp.entries),
                    "expected_exits": list(sp.expect),
                }
            )
        for name, factory in BUILTINS.items():
            p = factory()
            items.append(
                {
                    "name": name,
                    "description": p.description,
                    "bits": p.bits,
                    "takes_n": name in TAKES_N,
                    "takes_length": name in TAKES_LENGTH,
                    "expected_exits": p.expect,
                }
            )
    if json_out:
        emit_json(items)
        return
    from rich.table import Table

    table = Table("program", "mode", "what it shows")
    for it in items:
        table.add_row(str(it["name"]), f"{it['bits']}-bit", str(it["description"]))
    out.print(table)


@app.command("source")
def source(
    program: Annotated[str, typer.Argument(help="A built-in program name.")],
    n: Annotated[int | None, typer.Option("--count", help="Count or message length, as for 'run'.")] = None,
) -> None:
    """Print a built-in program's commented assembler source (a starting point for your own .asm)."""
    from vmlab.kvmapi.programs import builtin
    from vmlab.kvmapi.smp_guests import SMP_BUILTINS, smp_builtin

    with errors_to_exit():
        prog = smp_builtin(program, n) if program in SMP_BUILTINS else builtin(program, n)
    out.print(prog.source or "", markup=False, highlight=False, end="")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="kvm")
