"""`vmlab lab ls|show|variant|answers|predict|run`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, out, progress_printer
from vmlab.errors import UsageError

lab_app = typer.Typer(help="List, read and run labs.", no_args_is_help=True)


@lab_app.command("ls")
def lab_ls(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the labs and their tasks; a lab whose lab.toml is broken is one warning line, left out."""
    from rich.table import Table

    from vmlab.cli.output import warn_once
    from vmlab.labs.catalog import usable_labs

    with errors_to_exit():
        labs = usable_labs(warn_once)
    if json_out:
        emit_json(
            [
                {"name": lab.lab.name, "title": lab.lab.title, "tasks": [t.id for t in lab.tasks]}
                for lab in labs
            ]
        )
        return
    table = Table(title="labs")
    for col in ("name", "title", "tasks", "checks"):
        table.add_column(col)
    for lab in labs:
        table.add_row(lab.lab.name, lab.lab.title, str(len(lab.tasks)), str(len(lab.checks)))
    out.print(table)


@lab_app.command("show")
def lab_show(
    name: Annotated[str, typer.Argument(help="Lab name (see 'vmlab lab ls').")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the parsed lab.toml as JSON.")] = False,
) -> None:
    """Print a lab's task sheet, its checks and its questions."""
    from vmlab.labs.catalog import lab_path, load_lab

    with errors_to_exit():
        lab = load_lab(name)
        sheet = lab_path(name).parent / "README.md"
    if json_out:
        emit_json(lab.model_dump(mode="json"))
        return
    from vmlab.check.render import render_lab_sheet

    text = sheet.read_text() if sheet.is_file() else None
    for part in render_lab_sheet(lab, text, width=min(out.width, 100)):
        out.print(part)


@lab_app.command("variant")
def lab_variant(
    name: Annotated[str, typer.Argument(help="Lab name (see 'vmlab lab ls').")],
    student: Annotated[
        str | None, typer.Option("--student", envvar="VMLAB_STUDENT", help="The student id.")
    ] = None,
    term: Annotated[
        str | None, typer.Option("--term", envvar="VMLAB_TERM", help="The term (default: the lab's).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print a student's own workload parameters: what 'vmlab lab run --student ID' will run with."""
    from rich.markup import escape
    from rich.table import Table

    from vmlab.labs.catalog import load_lab
    from vmlab.labs.variants import derive, term_of

    with errors_to_exit():
        lab = load_lab(name)
        if lab.variants is None:
            raise UsageError(
                f"lab {name!r} has no per-student variants", hint="every student runs lab.toml's params"
            )
        values = derive(lab, student, term)
        chosen = term_of(lab, term)
    if json_out:
        emit_json({"lab": name, "term": chosen, "student": student, "values": values})
        return
    who = student if student else "nobody (no --student: the anonymous variant)"
    table = Table(title=f"{name}: variant of {escape(who)}, term {escape(chosen) or '(none)'}")
    for col in ("parameter", "value", "sets"):
        table.add_column(col, overflow="fold")
    for pname, spec in lab.variants.params.items():
        table.add_row(pname, escape(repr(values[pname])), ", ".join(spec.set))
    out.print(table)


def _write_new(path: Path, text: str, force: bool) -> None:
    """Write a file the student asked for, never over one they already have (their answers)."""
    from vmlab.report.io import write_atomic

    if path.is_dir():
        raise UsageError(f"-o {path}: is a folder", hint=f"give a file name such as {path / 'answers.toml'}")
    if path.exists() and not force:
        raise UsageError(f"-o {path}: exists; it is not overwritten", hint="give another file, or --force")
    write_atomic(path, text, elsewhere="write it elsewhere with -o")


@lab_app.command("answers")
def lab_answers(
    name: Annotated[str, typer.Argument(help="Lab name (see 'vmlab lab ls').")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the template here (default: print it).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the -o file when it exists.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the questions and the template as JSON.")
    ] = False,
) -> None:
    """Write the answers template of a lab: one table per question, `answer` left empty.

    Fill it in and hand it in with the run: 'vmlab lab run LAB --input answers=FILE'.
    """
    from vmlab.check.answers import answers_template
    from vmlab.labs.catalog import load_lab

    with errors_to_exit():
        lab = load_lab(name)
        if not lab.questions:
            raise UsageError(
                f"lab {name!r} asks no questions", hint="'vmlab lab show NAME' lists a lab's tasks"
            )
        text = answers_template(lab)
        if output is not None:
            _write_new(output, text, force)
    if json_out:
        emit_json(
            {
                "lab": lab.lab.name,
                "output": str(output) if output is not None else None,
                "questions": [q.model_dump(mode="json") for q in lab.questions],
                "template": text,
            }
        )
    elif output is not None:
        err.print(f"{len(lab.questions)} questions written to [bold]{output}[/]", highlight=False)
    else:
        import sys

        sys.stdout.write(text)


@lab_app.command("predict")
def lab_predict(
    name: Annotated[str, typer.Argument(help="Lab name (see 'vmlab lab ls').")],
    inputs: Annotated[
        list[str] | None, typer.Option("--input", help="Your answers file: answers=FILE.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the sealed predictions here (default: print)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the -o file when it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the sealed predictions as JSON.")] = False,
) -> None:
    """Seal your numeric answers before you measure: their sha256, the numbers and the time (UTC).

    Then run with 'vmlab lab run LAB --input answers=FILE --predictions SEALED': the report records the
    seal, and grading fails the `answers` check when the numbers changed or the seal came after the run.
    """
    import json

    from vmlab.check.answers import seal
    from vmlab.labs.catalog import load_lab
    from vmlab.labs.model import ANSWERS_INPUT

    with errors_to_exit():
        lab = load_lab(name)
        given = _parse_inputs(inputs or [])
        other = [n for n in given if n != ANSWERS_INPUT]
        if other or ANSWERS_INPUT not in given:
            raise UsageError(
                f"lab predict seals one input, {ANSWERS_INPUT}"
                + (f" (not {', '.join(other)})" if other else ""),
                hint=f"vmlab lab predict {name} --input {ANSWERS_INPUT}=answers.toml -o sealed.json",
            )
        sealed = seal(lab, given[ANSWERS_INPUT])
        text = json.dumps(sealed.model_dump(mode="json"), indent=2) + "\n"
        if output is not None:
            _write_new(output, text, force)
    if output is not None:
        err.print(
            f"{len(sealed.values)} predictions sealed at {sealed.sealed_at.isoformat(timespec='seconds')} "
            f"to [bold]{output}[/]",
            highlight=False,
        )
    if json_out:
        emit_json(sealed)
    elif output is None:
        import sys

        sys.stdout.write(text)


def _parse_sets(sets: list[str]) -> dict[str, dict[str, Any]]:
    """--set step.key=value → {step: {key: value}}; values are parsed as JSON when they can be
    (bounded in nesting like a report, so no value typed can make the parser recurse away)."""
    import json

    from vmlab.report.io import MAX_JSON_DEPTH, json_nesting

    params: dict[str, dict[str, Any]] = {}
    for item in sets:
        target, eq, raw = item.partition("=")
        step, dot, key = target.partition(".")
        if not eq or not dot or not step or not key:
            raise UsageError(
                f"--set {item!r}: expected STEP.KEY=VALUE", hint="for example --set true.runs=10"
            )
        depth = json_nesting(raw.encode("utf-8", "surrogateescape"))
        if depth is not None:
            raise UsageError(
                f"--set {target}=…: the value nests JSON {depth} levels deep (limit {MAX_JSON_DEPTH})",
                hint="give a plain value, such as --set true.runs=10",
            )
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params.setdefault(step, {})[key] = value
    return params


def _parse_inputs(items: list[str]) -> dict[str, Path]:
    """--input NAME=PATH, resolved from where the student stands."""
    found: dict[str, Path] = {}
    for item in items:
        name, eq, raw = item.partition("=")
        if not eq or not name or not raw:
            raise UsageError(f"--input {item!r}: expected NAME=PATH", hint="for example --input engine=my.py")
        found[name] = Path(raw).expanduser().absolute()
    return found


@lab_app.command("run")
def lab_run(
    name: Annotated[str, typer.Argument(help="Lab name (see 'vmlab lab ls').")],
    tasks: Annotated[
        list[str] | None, typer.Option("--task", help="Run only this task's steps (repeatable).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Report file (default $VMLAB_HOME/runs/<run>/report.json)."),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a step parameter: STEP.KEY=VALUE (repeatable)."),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", help="Your file or folder for a lab input: NAME=PATH (repeatable)."),
    ] = None,
    student: Annotated[
        str | None, typer.Option("--student", envvar="VMLAB_STUDENT", help="Your student id.")
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", help="Your sealed predictions ('vmlab lab predict'), recorded."),
    ] = None,
    grade: Annotated[bool, typer.Option("--check", help="Grade the report right away.")] = False,
    connect: Annotated[
        str | None, typer.Option("--connect", "-c", help="libvirt URI for the lab's guests.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run a lab's steps and write a report (grade it with 'vmlab check').

    Exit 0: every step ran. 3: a step was skipped or failed (the report says why).
    2: bad input. 130: Ctrl-C (the report written so far is kept).
    """
    from rich.markup import escape

    from vmlab.cli.output import relative_to_cwd
    from vmlab.labs.pipeline import RunRequest, run_lab

    with errors_to_exit():
        request = RunRequest(
            lab=name,
            tasks=tasks or None,
            sets=_parse_sets(sets or []),
            inputs=_parse_inputs(inputs or []),
            student=student,
            output=output,
            options={"connect": connect} if connect else {},
            predictions=predictions.expanduser().absolute() if predictions is not None else None,
        )
        result = run_lab(request, progress_printer())
    shown = relative_to_cwd(result.path)
    for step_id, step in result.report.steps.items():
        if step.status != "ok":
            err.print(f"[yellow]{step_id}: {step.status}[/]: {escape(step.message)}", highlight=False)
    err.print(f"report written to [bold]{shown}[/]")
    if grade:
        from vmlab.cli.check import _grade_and_exit

        _grade_and_exit(result.path, None, None, json_out, write_back=True)
    if json_out:
        emit_json(result.report)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")
