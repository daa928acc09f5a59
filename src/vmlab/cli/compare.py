"""`vmlab compare`: guest vs container vs native, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, fail, out, progress_printer


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
        typer.Option("-o", "--output", help="Directory for report.json and plots (default runs/<run_id>)."),
    ] = None,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write PNG plots next to the report.")
    ] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Measure start-up, memory overhead and traps of a guest and a container from the same root fs."""
    from vmlab.experiments.compare import CompareOptions, run_compare
    from vmlab.labs.runner import make_report
    from vmlab.paths import new_run_id
    from vmlab.report.io import save_report
    from vmlab.report.summary import compare_table

    if accel not in ("auto", "kvm", "tcg"):
        raise fail(f"--accel {accel!r}: choose auto, kvm or tcg")
    opts = CompareOptions(
        runs=runs,
        image=image,
        accel=accel,
        memory_mib=memory,
        only=tuple(x.strip() for x in only.split(",") if x.strip()),
    )
    run_id = new_run_id()
    directory = output or Path("runs") / run_id
    with errors_to_exit():
        opts.validate()
        experiments = run_compare(opts, run_id, "system-vm", progress_printer())
        report = make_report(
            "system-vm",
            run_id,
            experiments,
            {"runs": runs, "image": image, "accel": accel, "memory_mib": memory, "only": list(opts.only)},
        )
        path = save_report(report, directory / "report.json")
        made = []
        if plots:
            from vmlab.report.plots import write_plots

            made = write_plots(report, directory)
    if json_out:
        emit_json(report)
    else:
        out.print(compare_table(report))
    err.print(f"report: [bold]{path}[/]")
    for p in made:
        err.print(f"plot:   {p}")
    err.print(f"grade it: vmlab check {path} --lab system-vm")


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
