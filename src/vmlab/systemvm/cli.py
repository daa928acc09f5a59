"""`vmlab compare`: native vs container vs sandbox vs guest, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, out, progress_printer
from vmlab.errors import BackendError, NotAvailable


def compare(
    runs: Annotated[int, typer.Option("--runs", "-n", help="Cold starts per kind.")] = 5,
    image: Annotated[str, typer.Option("--image", help="Image for both kinds.")] = "tiny",
    accel: Annotated[
        str, typer.Option("--accel", help="auto | kvm | tcg (auto: KVM only where a guest can boot).")
    ] = "auto",
    memory: Annotated[
        int | None, typer.Option("--memory", help="Guest memory in MiB (default: the image's).")
    ] = None,
    only: Annotated[
        str, typer.Option("--only", help="Comma-separated subset of startup,memory,traps.")
    ] = "startup,memory,traps",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Report file (default $VMLAB_HOME/runs/<run>/report.json)."),
    ] = None,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write PNG plots beside the report.")
    ] = True,
    student: Annotated[
        str | None, typer.Option("--student", envvar="VMLAB_STUDENT", help="Your student id.")
    ] = None,
    connect: Annotated[
        str | None,
        typer.Option("--connect", "-c", help="libvirt URI for the guest (default: as `vmlab doctor` says)."),
    ] = None,
    runtime: Annotated[
        list[str] | None,
        typer.Option(
            "--runtime",
            help="A runtime instead of its kind's default (`vmlab doctor` lists them); repeatable.",
        ),
    ] = None,
    kinds: Annotated[
        str, typer.Option("--kinds", help="Comma-separated subset of container,sandbox,vm.")
    ] = "container,sandbox,vm",
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Measure start-up, memory and traps: container, gVisor sandbox and guest from one root fs.

    A native process is the baseline.
    """
    from vmlab.cli.output import relative_to_cwd
    from vmlab.labs.catalog import load_lab, view
    from vmlab.labs.pipeline import RunRequest, run_lab

    sets = {
        "compare": {
            "runs": runs,
            "image": image,
            "accel": accel,
            "memory_mib": memory,
            "only": [x.strip() for x in only.split(",") if x.strip()],
            "kinds": [x.strip() for x in kinds.split(",") if x.strip()],
            "runtimes": list(runtime or []),
        }
    }
    request = RunRequest(
        lab="system-vm",
        steps=["compare"],
        sets=sets,
        output=output,
        student=student,
        options={"connect": connect} if connect else {},
    )
    with errors_to_exit():
        result = run_lab(request, progress_printer())
        report, path = result.report, result.path
        step = report.steps["compare"]
        if step.status != "ok":  # a requirement unmet is a missing capability (exit 3), else a fault (4)
            error = NotAvailable if step.status == "skipped" else BackendError
            raise error(f"compare {step.status}: {step.message}", hint=f"partial report: {path}")
        made = []
        lab = load_lab("system-vm")
        if plots and (write_plots := view(lab, "plots")) is not None:
            made = write_plots(report, path.parent)
        table = view(lab, "table")
    if json_out:
        emit_json(report)
    elif table is not None:
        out.print(table(report))
    err.print(f"report: [bold]{relative_to_cwd(path)}[/]")
    for p in made:
        err.print(f"plot:   {relative_to_cwd(p)}")
    err.print(f"grade it: vmlab check {relative_to_cwd(path)}")


def register(app: typer.Typer) -> None:
    from vmlab.systemvm.part3_cli import register as register_part3

    app.command("compare")(compare)
    register_part3(app)  # vmlab system-vm devices|vcpus
