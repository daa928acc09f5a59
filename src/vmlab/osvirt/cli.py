"""`vmlab os-virt table REPORT`: the cost table of an os-virt report (box, runc, Docker, gVisor)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vmlab.cli.output import emit_json, errors_to_exit, out

app = typer.Typer(help="The os-virt lab: a container by hand.", no_args_is_help=True)


@app.command("table")
def table_cmd(
    report: Annotated[Path, typer.Argument(help="An os-virt report.json.")],
    json_out: Annotated[bool, typer.Option("--json", help="The rows as JSON.")] = False,
) -> None:
    """Creation costs: /bin/true in the box, runc, Docker and gVisor; the box's stages; each namespace."""
    from vmlab.osvirt.views import rows, table
    from vmlab.report.io import load_report

    with errors_to_exit():
        rep = load_report(report)
    if json_out:
        emit_json(rows(rep))
    else:
        out.print(table(rep))


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="os-virt")
