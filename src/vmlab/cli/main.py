"""Entry point. Sub-command groups live in their own modules; heavy imports stay inside commands."""

from __future__ import annotations

import logging
from typing import Annotated, Any

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


def _flags_without_type() -> None:
    """Help lists a flag as `--json`, not `--json <bool>`: this Typer version prints a flag's type.

    A flag takes no value, so its type only misleads; every other option keeps its type column.
    """
    from typer.core import TyperOption

    original = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else original(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _register() -> None:
    """Core groups, then each lab's own group as its lab.toml names it (`[lab] cli`).

    Every group's module imports only typer at module level; heavy libraries load inside commands.
    A lab whose lab.toml does not parse, or whose CLI module cannot be imported, is left out with one
    warning line on stderr, never breaking the others nor `vmlab --help`.
    """
    import importlib
    import sys

    from vmlab.cli import check, doctor, grade, image, labs, lifecycle, release, report
    from vmlab.cli.output import warn_once
    from vmlab.labs.catalog import cli_registrars

    doctor.register(app)
    labs.register(app)
    check.register(app)
    grade.register(app)
    app.add_typer(report.app, name="report")
    app.add_typer(image.app, name="image")
    lifecycle.register(app)
    release.register(app)
    broken: list[str] = []
    for lab, spec in cli_registrars(broken.append):
        module_name, _, func = spec.partition(":")
        try:
            getattr(importlib.import_module(module_name), func)(app)
        except (ImportError, AttributeError) as e:
            warn_once(f"lab {lab}: its commands ({spec}) are unavailable: {e}")
    # A lab.toml that does not parse is said where labs are shown (help here, `lab ls` itself); a
    # command that loads that lab says it as its one error line, so it is not said twice there.
    args = sys.argv[1:]
    if not args or "--help" in args or "-h" in args:
        for line in broken:
            warn_once(line)


_flags_without_type()
_register()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Ctrl-C and SIGTERM (a CI job's timeout) both unwind as KeyboardInterrupt, so cleanup runs.

    SIGINT is re-armed explicitly: a shell starts background jobs with it ignored, and Python then
    never raises KeyboardInterrupt.
    """
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    app()
