"""Entry point. Sub-command groups live in their own modules, imported when used (cli/lazy.py); heavy
imports stay inside commands."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from vmlab import __version__
from vmlab.cli.lazy import LazyGroup, Registrar

# vmlab's own groups, in the order Typer lists them (commands first, then groups, each in this order).
CORE = (
    "vmlab.cli.doctor:register",
    "vmlab.cli.labs:register",
    "vmlab.cli.check:register",
    "vmlab.cli.grade:register",
    "vmlab.cli.report:register",
    "vmlab.cli.image:register",
    "vmlab.cli.lifecycle:register",
    "vmlab.cli.release:register",
)


def all_registrars(broken: Callable[[str], None] | None = None) -> list[Registrar]:
    """Core groups, then each lab's own group as its lab.toml names it (`[lab] cli`).

    Every group's module imports only typer at module level; heavy libraries load inside commands.
    A lab whose lab.toml does not parse is left out with one warning line on stderr, never breaking
    the others nor `vmlab --help` (`broken` gets its line); one whose CLI module cannot be imported
    says so when it is used.
    """
    from vmlab.labs.catalog import cli_registrars

    labs = [Registrar(spec, lab) for lab, spec in cli_registrars(broken)]
    return [Registrar(spec) for spec in CORE] + labs


class _Root(LazyGroup):
    broken: list[str]  # lab.toml files whose [lab] table does not parse

    def registrars(self) -> list[Registrar]:
        self.broken = []
        return all_registrars(self.broken.append)

    def warn(self, message: str) -> None:
        from vmlab.cli.output import warn_once

        warn_once(message)

    def main(self, args: Sequence[str] | None = None, *rest: Any, **extra: Any) -> Any:
        """A lab.toml that does not parse is said where labs are shown (help here, `lab ls` itself);
        a command that loads that lab says it as its one error line, so it is not said twice there."""
        argv = list(sys.argv[1:] if args is None else args)
        if not argv or "--help" in argv or "-h" in argv:
            for line in self.broken:
                self.warn(line)
        return super().main(args, *rest, **extra)


app = typer.Typer(
    name="vmlab",
    help="Learn how virtual machines work by measuring them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Root,
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


_flags_without_type()


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
