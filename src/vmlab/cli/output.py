"""Output conventions: results on stdout (JSON or a table), logs, progress and errors on stderr."""

from __future__ import annotations

import errno
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from vmlab.errors import PARTIAL_REPORT, OutputError, VmlabError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("vmlab")


def emit_json(obj: Any) -> None:
    """Machine output: plain JSON on stdout, nothing else there."""
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json")
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 2, *, partial_report: str | None = None) -> typer.Exit:
    """The one error line on stderr (problem and fix); where a partial report was kept, its path
    follows on a second line, so no line ever holds two fixes."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    if partial_report:
        err.print(escape(f"{PARTIAL_REPORT}{partial_report}"), highlight=False)
    return typer.Exit(code)


_warned: set[str] = set()


def warn_once(message: str) -> None:
    """One warning line on stderr, printed once per process (a broken lab is met at start-up and
    again by the command that lists labs)."""
    from rich.markup import escape

    if message in _warned:
        return
    _warned.add(message)
    err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


# Write faults that are never vmlab's bug: wherever one escapes a writer, it is one line, not a traceback.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)})


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Map vmlab errors to one line on stderr and their exit code; Ctrl-C to 130.

    Cleanup happens in the library's own context managers before the exception reaches here.
    """
    try:
        yield
    except VmlabError as e:
        if log.isEnabledFor(logging.DEBUG):
            err.print_exception()
        raise fail(e.one_line(), e.exit_code, partial_report=getattr(e, "partial_report", None)) from None
    except OSError as e:
        if e.errno not in _DISK_ERRNOS:
            raise
        if log.isEnabledFor(logging.DEBUG):
            err.print_exception()
        if e.filename:
            one = OutputError.from_os(e, e.filename, elsewhere="write elsewhere").one_line()
        else:
            one = f"cannot write: {(e.strerror or str(e)).lower()} (fix: free space or write elsewhere)"
        raise fail(one, OutputError.exit_code) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted; cleaned up[/]")
        raise typer.Exit(130) from None


def progress_printer(prefix: str = "") -> Callable[[str], None]:
    """A progress callback for library code: one dim line per step on stderr."""

    from rich.markup import escape

    def show(msg: str) -> None:
        err.print(f"[dim]{escape(prefix + msg)}[/]", highlight=False)

    return show


def relative_to_cwd(path: Path) -> str:
    """How a path is shown to the user: relative when under the current folder."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
