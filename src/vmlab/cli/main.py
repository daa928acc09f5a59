"""Entry point. Sub-command groups live in their own modules; heavy imports stay inside commands."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from vmlab import __version__

app = typer.Typer(
    name="vmlab",
    help="Learn how virtual machines work by measuring them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"vmlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    from rich.logging import RichHandler

    from vmlab.cli.output import err

    handler = RichHandler(console=err, show_time=False, show_path=False)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("vmlab").setLevel(logging.DEBUG if debug else logging.INFO)


def _register() -> None:
    """Each group's module imports only typer at module level; heavy libraries load inside commands."""
    from vmlab.cli import compare, doctor, image, isa, kvm, labs, lifecycle, report

    doctor.register(app)
    labs.register(app)
    app.add_typer(report.app, name="report")
    app.add_typer(image.app, name="image")
    lifecycle.register(app)
    compare.register(app)
    app.add_typer(kvm.app, name="kvm")
    app.add_typer(isa.app, name="isa")


_register()


def main() -> None:
    app()
