"""`vmlab check`: grade a report against its lab's checks.

Exit codes: 0 every required check passed (or is not applicable), 1 a required check failed (the
integrity check included), 2 the report or the lab is invalid, 3 a required check could not be graded
(its step did not run, or it is `error`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vmlab.cli.output import emit_json, errors_to_exit, out

if TYPE_CHECKING:
    from vmlab.report.model import CheckResult, Grade, Report, Timing
    from vmlab.spec.lab import Lab


def print_verdict(
    report: Report, lab: Lab, results: list[CheckResult], grade: Grade, *, verbose: bool
) -> None:
    from vmlab.check.render import render_verdict

    for part in render_verdict(report, lab, results, grade, verbose=verbose, width=min(out.width, 100)):
        out.print(part)


def _grade_and_exit(
    report_path: Path,
    lab_name: str | None,
    junit: Path | None,
    json_out: bool,
    *,
    write_back: bool = False,
    tasks: list[str] | None = None,
    timing: Timing = "graded",
    verbose: bool = False,
    require_artifacts: bool = False,
) -> None:
    """Grade, print (JSON or the verdict), write JUnit / the graded report, exit with Grade.exit_code."""
    from vmlab.check.grader import grade_report
    from vmlab.check.junit import write_junit
    from vmlab.labs.catalog import load_lab
    from vmlab.report.io import load_report, save_report

    with errors_to_exit():
        report = load_report(report_path)
        lab = load_lab(lab_name or report.lab)
        results, grade = grade_report(
            report,
            lab,
            report_dir=report_path.parent,
            tasks=tasks,
            timing=timing,
            require_artifacts=require_artifacts,
        )
        if junit is not None:
            write_junit(results, lab.lab.name, junit, grade=grade)
        if write_back:
            save_report(report.model_copy(update={"checks": results, "grade": grade}), report_path)
    if json_out:
        emit_json(
            {
                "lab": lab.lab.name,
                "report": str(report_path),
                "passed": grade.passed,
                "grade": grade.model_dump(mode="json"),
                # `passed` per check too, for scripts written against schema 1
                "checks": [{**r.model_dump(mode="json"), "passed": r.passed} for r in results],
            }
        )
    else:
        print_verdict(report, lab, results, grade, verbose=verbose)
    raise typer.Exit(grade.exit_code)


def check(
    report: Annotated[Path, typer.Argument(help="The report.json to grade.")],
    lab: Annotated[
        str | None, typer.Option("--lab", help="Grade against this lab (default: the report's).")
    ] = None,
    task: Annotated[
        list[str] | None, typer.Option("--task", help="Grade only this task's checks (repeatable).")
    ] = None,
    timing: Annotated[
        str,
        typer.Option(
            "--timing",
            help="graded: timing checks count like any other; advisory: they are shown but never "
            "fail the verdict nor count in the score.",
        ),
    ] = "graded",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every check.")] = False,
    require_artifacts: Annotated[
        bool,
        typer.Option("--require-artifacts", help="Fail integrity when a listed artifact is not there."),
    ] = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write JUnit XML here for CI.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results and grade as JSON.")] = False,
) -> None:
    """Grade a report against its lab's checks; exit 0 only when every required check passes."""
    from vmlab.report.model import parse_timing

    with errors_to_exit():
        chosen = parse_timing(timing)
    _grade_and_exit(
        report,
        lab,
        junit,
        json_out,
        tasks=task,
        timing=chosen,
        verbose=verbose,
        require_artifacts=require_artifacts,
    )


def register(app: typer.Typer) -> None:
    app.command("check")(check)
