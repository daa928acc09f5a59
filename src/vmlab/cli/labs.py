"""`vmlab lab ls|show|run` and `vmlab check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, fail, out, progress_printer

lab_app = typer.Typer(help="List, read and run labs.", no_args_is_help=True)


@lab_app.command("ls")
def lab_ls(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the labs and their tasks."""
    from rich.table import Table

    from vmlab.labs.runner import lab_names, load_lab

    with errors_to_exit():
        labs = [load_lab(n) for n in lab_names()]
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
    """Print a lab's task sheet and its checks."""
    from rich.markdown import Markdown
    from rich.table import Table

    from vmlab.labs.runner import lab_path, load_lab

    with errors_to_exit():
        lab = load_lab(name)
        sheet = lab_path(name).parent / "README.md"
    if json_out:
        emit_json(lab.model_dump(mode="json"))
        return
    if sheet.is_file():
        out.print(Markdown(sheet.read_text()))
    table = Table(title=f"checks of {name}")
    for col in ("id", "task", "kind", "what", "required"):
        table.add_column(col, overflow="fold")
    for c in lab.checks:
        table.add_row(c.id, c.task or "", c.kind, c.description, "yes" if c.required else "no")
    out.print(table)


def _parse_sets(sets: list[str]) -> dict[str, dict[str, Any]]:
    """--set step.key=value → {step: {key: value}}; values are parsed as JSON when they can be."""
    import json

    params: dict[str, dict[str, Any]] = {}
    for item in sets:
        target, eq, raw = item.partition("=")
        step, dot, key = target.partition(".")
        if not eq or not dot or not step or not key:
            raise fail(f"--set {item!r}: expected STEP.KEY=VALUE, for example --set true.runs=10")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params.setdefault(step, {})[key] = value
    return params


@lab_app.command("run")
def lab_run(
    name: Annotated[str, typer.Argument(help="Lab name (see 'vmlab lab ls').")],
    task: Annotated[str | None, typer.Option("--task", help="Run only this task's experiments.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write report.json.")] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a step parameter: STEP.KEY=VALUE (repeatable)."),
    ] = None,
    engine_module: Annotated[
        Path | None, typer.Option("--engine-module", help="A student's engine file (isa-emulation lab).")
    ] = None,
    grade: Annotated[bool, typer.Option("--check/--no-check", help="Grade the report right away.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run a lab's experiments and write a report (grade it with 'vmlab check')."""
    from vmlab.labs.runner import run_lab
    from vmlab.report.io import save_report

    options: dict[str, Any] = {"params": _parse_sets(sets or [])}
    if engine_module is not None:
        if not engine_module.is_file():
            raise fail(f"--engine-module {engine_module}: no such file", 2)
        options["engine_module"] = str(engine_module.resolve())
    with errors_to_exit():
        report = run_lab(name, task=task, options=options, progress=progress_printer())
        from vmlab.paths import run_dir

        path = output or run_dir(report.run_id) / "report.json"
        save_report(report, path)
    err.print(f"report written to [bold]{path}[/]")
    if grade:
        _grade_and_exit(path, None, None, json_out, write_back=True)
    if json_out:
        emit_json(report)


def _grade_and_exit(
    report_path: Path, lab_name: str | None, junit: Path | None, json_out: bool, *, write_back: bool = False
) -> None:
    from rich.table import Table

    from vmlab.check.grader import all_required_pass, grade
    from vmlab.check.junit import write_junit
    from vmlab.labs.runner import load_lab
    from vmlab.report.io import load_report, save_report

    with errors_to_exit():
        report = load_report(report_path)
        lab = load_lab(lab_name or report.lab)
        results = grade(report, lab)
        if junit is not None:
            write_junit(results, lab.lab.name, junit)
        if write_back:
            save_report(report.model_copy(update={"checks": results}), report_path)
    ok = all_required_pass(results)
    if json_out:
        emit_json(
            {
                "lab": lab.lab.name,
                "report": str(report_path),
                "passed": ok,
                "checks": [r.model_dump(mode="json") for r in results],
            }
        )
    else:
        table = Table(title=f"{lab.lab.name}: {report.run_id}")
        for col in ("check", "task", "result", "measured", "expected", "note"):
            table.add_column(col, overflow="fold")
        for r in results:
            mark = "[green]pass[/]" if r.passed else ("[red]FAIL[/]" if r.required else "[yellow]fail[/]")
            table.add_row(r.id, r.task or "", mark, str(r.measured), r.expected, r.message or r.description)
        out.print(table)
        n_fail = sum(1 for r in results if not r.passed and r.required)
        out.print(
            f"{len(results) - n_fail}/{len(results)} checks passed"
            + ("" if ok else f", {n_fail} required failed")
        )
    raise typer.Exit(0 if ok else 1)


def check(
    report: Annotated[Path, typer.Argument(help="The report.json to grade.")],
    lab: Annotated[
        str | None, typer.Option("--lab", help="Grade against this lab (default: the report's).")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write JUnit XML here for CI.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Grade a report against its lab's checks; exit 0 only when every required check passes."""
    _grade_and_exit(report, lab, junit, json_out)


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")
    app.command("check")(check)
