"""`vmlab release LAB... -o DIR`: write the student kit of some labs (the logic is vmlab.release)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, out


def release(
    labs: Annotated[list[str], typer.Argument(help="The labs to hand out (see 'vmlab lab ls').")],
    output: Annotated[Path, typer.Option("-o", "--output", help="A new or empty folder for the kit.")],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print what was written and what was left out, as JSON.")
    ] = False,
) -> None:
    """Write the student kit: vmlab, the labs' sheets and skeletons, no solutions nor tutors' parts.

    Left out: labs/*/solution/, tests/, the solution modules the labs declare (unless the shipped code
    imports them), [rerun] and [[bounds]] of each lab.toml, the tutors' docs. Exit 2: bad input, such
    as a folder that is not empty.
    """
    import functools

    from vmlab.release import release as write_release

    with errors_to_exit():
        result = write_release(labs, output)
    if json_out:
        emit_json(result.as_dict())
        return
    say = functools.partial(out.print, markup=False, highlight=False)
    say(f"kit of {', '.join(result.labs)}: {len(result.written)} files in {result.output}")
    for k in result.kept_solutions:
        declared, importers = "; ".join(k.declared_by), ", ".join(k.imported_by)
        say(f"  kept {k.module} ({declared}): imported by {importers}")
    for x in result.left_out:
        say(f"  left out {x.path}: {x.why}")
    for path, tables in result.removed_tables.items():
        say(f"  {path}: removed {', '.join(tables)}")
    err.print("make the students' repository from this folder; keep this one for the tutors")


def register(app: typer.Typer) -> None:
    app.command("release")(release)
