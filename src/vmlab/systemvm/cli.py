"""`vmlab compare`: native vs container vs sandbox vs guest, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vmlab.runtime_registry import INSTANCE_KINDS
from vmlab.systemvm import EXPERIMENTS

# Unset options are not passed on: the compare step's defaults (lab.toml, then systemvm.params) apply.
_DEFAULT = "default: the lab's"


def compare(
    runs: Annotated[
        int | None, typer.Option("--runs", "-n", help=f"Cold starts per kind ({_DEFAULT}).")
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help=f"Image for every kind ({_DEFAULT}).")] = None,
    accel: Annotated[
        str | None, typer.Option("--accel", help="auto | kvm | tcg (auto: KVM only where a guest can boot).")
    ] = None,
    memory: Annotated[
        int | None, typer.Option("--memory", help="Guest memory in MiB (default: the image's).")
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", help=f"Comma-separated subset of {','.join(EXPERIMENTS)}.")
    ] = None,
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
        str | None, typer.Option("--kinds", help=f"Comma-separated subset of {','.join(INSTANCE_KINDS)}.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Measure start-up, memory and traps: container, gVisor sandbox and guest from one root fs.

    A native process is the baseline.
    """
    from vmlab.systemvm.part3_cli import csv_list as _listed
    from vmlab.systemvm.part3_cli import run_step

    given = {
        "runs": runs,
        "image": image,
        "accel": accel,
        "memory_mib": memory,
        "only": _listed(only),
        "kinds": _listed(kinds),
        "runtimes": list(runtime) if runtime else None,
    }
    run_step(
        "compare", given, output=output, plots=plots, student=student, connect=connect, json_out=json_out
    )


def register(app: typer.Typer) -> None:
    from vmlab.systemvm.part3_cli import register as register_part3

    app.command("compare")(compare)
    register_part3(app)  # vmlab system-vm devices|vcpus
