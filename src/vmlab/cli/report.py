"""`vmlab report schema|show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vmlab.cli.output import emit_json, errors_to_exit, out

app = typer.Typer(help="Inspect reports and their JSON schema.", no_args_is_help=True)


@app.command("schema")
def schema() -> None:
    """Print the report's JSON Schema (also committed as schemas/report.schema.json)."""
    from vmlab.report.model import report_json_schema

    print(json.dumps(report_json_schema(), indent=2, sort_keys=True))


@app.command("show")
def show(
    path: Annotated[Path, typer.Argument(help="A report.json written by a lab run.")],
    json_out: Annotated[bool, typer.Option("--json", help="Re-emit the validated report as JSON.")] = False,
) -> None:
    """Render a report as tables."""
    from vmlab.report.io import load_report
    from vmlab.report.render import render_report

    with errors_to_exit():
        report = load_report(path)
    if json_out:
        emit_json(report)
        return
    for renderable in render_report(report):
        out.print(renderable)


@app.command("html")
def html(
    source: Annotated[Path, typer.Argument(help="A report.json, or the OUT/ folder `vmlab grade` wrote.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Site folder.")] = Path("site"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the site's paths as JSON.")] = False,
) -> None:
    """Write a static site (no server): a class page and one page per report, with plots and verdicts."""
    with errors_to_exit():
        index = _build_site_atomically(source, output)
    if json_out:
        emit_json({"index": str(index), "site": str(output)})
    else:
        out.print(f"site written to {index}", highlight=False)


def _build_site_atomically(source: Path, output: Path) -> Path:
    """Build the site in a temp folder beside OUTPUT, then move each page into place.

    A full disk or a read-only folder is one line naming OUTPUT; the pages of an earlier site stay as
    they were and no temp folder is left. Files in OUTPUT that the site does not write are kept.
    """
    import os
    import secrets
    import shutil

    from vmlab.grade.site import build_site
    from vmlab.report.io import writing

    elsewhere = "build the site elsewhere with -o DIR"
    shown, output = output, output.absolute()
    tmp = output.parent / f".{output.name}.{secrets.token_hex(4)}.tmp"
    try:
        with writing(output, elsewhere=elsewhere):
            output.parent.mkdir(parents=True, exist_ok=True)
            index = build_site(source, tmp)
            for page in sorted(p for p in tmp.rglob("*") if p.is_file()):
                dest = output / page.relative_to(tmp)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(page, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return shown / index.relative_to(tmp)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="report")
