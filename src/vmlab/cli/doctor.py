"""`vmlab doctor`."""

from __future__ import annotations

from typing import Annotated

import typer

from vmlab.cli.output import emit_json, errors_to_exit, out

STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}


def doctor(json_out: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False) -> None:
    """Probe KVM, libvirt, Docker and the lab tools; say how to fix what is missing."""
    from rich.table import Table

    from vmlab.cli.output import warn_once
    from vmlab.host.doctor import diagnose
    from vmlab.labs.tools import every_lab_tool

    with errors_to_exit():
        diag = diagnose(every_lab_tool(warn_once))
    if json_out:
        emit_json(diag.as_dict())
    else:
        table = Table(title="vmlab doctor")
        for col in ("check", "status", "detail", "fix"):
            table.add_column(col, overflow="fold")
        for r in diag.rows:
            table.add_row(r.name, STYLE[r.status], r.detail, r.fix)
        out.print(table)
        out.print("core: " + ("[green]ready[/]" if diag.core_ok else "[red]not ready[/] (see FAIL rows)"))
    raise typer.Exit(0 if diag.core_ok else 3)  # 3: a capability the core needs is missing


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
