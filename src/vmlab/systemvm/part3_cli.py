"""`vmlab system-vm devices|vcpus`: one step of the system-vm lab each, with its table, plots and --json.

Thin: each command turns options into `--set` values for the lab's step and runs it through the lab
pipeline, so the report is the same as `vmlab lab run system-vm --task ...` writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, out, progress_printer
from vmlab.errors import BackendError, NotAvailable

app = typer.Typer(help="The system-vm lab's part-3 experiments.", no_args_is_help=True)

Output = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="Report file (default $VMLAB_HOME/runs/<run>/report.json)."),
]
Plots = Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots beside the report.")]
Kinds = Annotated[str | None, typer.Option("--kinds", help="Comma-separated kinds (default: the step's).")]
Connect = Annotated[
    str | None,
    typer.Option("--connect", "-c", help="libvirt URI for the guest (default: `vmlab doctor`'s)."),
]
Student = Annotated[str | None, typer.Option("--student", envvar="VMLAB_STUDENT", help="Your student id.")]
Json = Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")]


def csv_list(text: str | None) -> list[str] | None:
    """`a, b,c` -> [a, b, c]; None or empty: None (the step's default)."""
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _ints(text: str | None) -> list[int] | None:
    from vmlab.errors import UsageError

    try:
        return [int(x) for x in csv_list(text) or []] or None
    except ValueError:
        raise UsageError(f"--vcpus {text!r}: expected numbers such as 1,2", hint="--vcpus 1,2") from None


def run_step(
    step: str,
    sets: dict[str, Any],
    *,
    output: Path | None,
    plots: bool,
    student: str | None,
    connect: str | None,
    json_out: bool,
) -> None:
    """Run one step of system-vm through the lab pipeline and show the lab's table (or the report as
    JSON), its plots and where the report went; a skipped step exits 3, a failed one 4."""
    from vmlab.backends.context import RunContext
    from vmlab.cli.output import relative_to_cwd
    from vmlab.labs.catalog import view
    from vmlab.labs.pipeline import RunRequest, run_lab
    from vmlab.systemvm import LAB

    request = RunRequest(
        lab=LAB,
        steps=[step],
        sets={step: {k: v for k, v in sets.items() if v is not None}},
        output=output,
        student=student,
        context=RunContext(uri=connect or None),
    )
    with errors_to_exit():
        result = run_lab(request, progress_printer())
        report, path = result.report, result.path
        record = report.steps[step]
        if record.status != "ok":  # a requirement unmet is a missing capability (exit 3), else a fault (4)
            error = NotAvailable if record.status == "skipped" else BackendError
            raise error(f"{step} {record.status}: {record.message}", hint=f"partial report: {path}")
        write_plots = view(result.lab, "plots") if plots else None
        made = write_plots(report, path.parent) if write_plots is not None else []
        table = view(result.lab, "table")
    if json_out:
        emit_json(report)
    elif table is not None:
        out.print(table(report))
    err.print(f"report: [bold]{relative_to_cwd(path)}[/]")
    for p in made:
        err.print(f"plot:   {relative_to_cwd(p)}")
    err.print(f"grade it: vmlab check {relative_to_cwd(path)}")


@app.command("devices")
def devices(
    io_blocks: Annotated[
        int | None, typer.Option("--io-blocks", help="64-byte blocks of the I/O loop (default 16).")
    ] = None,
    idle: Annotated[float | None, typer.Option("--idle", help="Idle phase, seconds (default 3).")] = None,
    accel: Annotated[str | None, typer.Option("--accel", help="auto | kvm | tcg.")] = None,
    kinds: Kinds = None,
    output: Output = None,
    plots: Plots = True,
    student: Student = None,
    connect: Connect = None,
    json_out: Json = False,
) -> None:
    """Traps per phase: device accesses per region (TCG) or VM exits (KVM), Sentry calls, syscalls."""
    sets = {"io_blocks": io_blocks, "idle_s": idle, "accel": accel, "kinds": csv_list(kinds)}
    run_step("devices", sets, output=output, plots=plots, student=student, connect=connect, json_out=json_out)


@app.command("vcpus")
def vcpus(
    counts: Annotated[
        str | None, typer.Option("--vcpus", help="Comma-separated vCPU counts (default 1,2,4; capped).")
    ] = None,
    iterations: Annotated[
        int | None, typer.Option("--iterations", help="Iterations of each busy loop (default 150000).")
    ] = None,
    repeats: Annotated[int | None, typer.Option("--repeats", help="Runs per count (default 2).")] = None,
    accel: Annotated[str | None, typer.Option("--accel", help="auto | kvm | tcg.")] = None,
    kinds: Kinds = None,
    output: Output = None,
    plots: Plots = True,
    student: Student = None,
    connect: Connect = None,
    json_out: Json = False,
) -> None:
    """Boot time and a parallel workload's speedup with 1, 2, ... vCPUs; a container with --cpus."""
    with errors_to_exit():
        vc = _ints(counts)
    sets = {
        "vcpus": vc,
        "iterations": iterations,
        "repeats": repeats,
        "accel": accel,
        "kinds": csv_list(kinds),
    }
    run_step("vcpus", sets, output=output, plots=plots, student=student, connect=connect, json_out=json_out)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="system-vm")
