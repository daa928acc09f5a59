"""What `vmlab grade` and `grade merge` print and exit with once a class is graded: the outputs written,
the summary as a table (or `--json`), the rows that changed against `--compare-to`, and exit 3 with
`--fail-on-flags` when some hand-in is held, flagged or invalid."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, out

if TYPE_CHECKING:
    from vmlab.grade.model import ClassResult


def finish(
    result: ClassResult, output: Path, compare_to: Path | None, json_out: bool, fail_on_flags: bool
) -> None:
    from vmlab.grade.outputs import compare, read_class, write_all

    with errors_to_exit():
        paths = write_all(result, output)
        regrade = compare(read_class(compare_to), result) if compare_to else None
    from vmlab.grade.model import STATUSES

    counts = {k: sum(1 for s in result.students if s.status == k) for k in STATUSES}
    if json_out:
        payload: dict[str, Any] = {
            "lab": result.lab,
            "shard": result.shard,
            "seconds": result.seconds,
            "counts": counts,
            "outputs": {k: str(v) for k, v in paths.items()},
            "students": [
                {
                    "student": s.student,
                    "handin": s.handin,
                    "status": s.status,
                    "score": s.score,
                    "computed_score": s.computed_score,
                    "max_score": s.max_score,
                    "flags": [f.code for f in s.flags],
                    "decision": None if s.decision is None else s.decision.action,
                    "rubric_points": s.rubric_points,
                    "rubric_pending": s.rubric_pending,
                }
                for s in result.students
            ],
            "missing": result.missing,
            "unused_decisions": result.unused_decisions,
            "unused_rubric": result.unused_rubric,
            "rubric_pending": sum(s.rubric_pending for s in result.students),
        }
        if regrade is not None:
            payload["regrade"] = regrade
        emit_json(payload)
    else:
        _print_table(result)
        if regrade is not None:
            _print_regrade(regrade)
    shown = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "none"
    err.print(
        f"[dim]{result.lab}: {len(result.students)} hand-ins ({shown}) in {result.seconds or 0:.2f} s; "
        f"written to {output}/[/]",
        highlight=False,
    )
    if result.missing:
        err.print(f"no hand-in from {len(result.missing)} roster student(s): {', '.join(result.missing)}")
    if result.unused_decisions:
        err.print(f"decisions naming no hand-in (not applied): {', '.join(result.unused_decisions)}")
    for line in result.unused_rubric:
        err.print(f"rubric row not applied: {line}", highlight=False, markup=False)
    pending = sum(s.rubric_pending for s in result.students)
    if pending:
        err.print(f"{pending} written answer(s) wait for rubric points (class.csv rubric_pending)")
    if fail_on_flags and (counts["review"] or counts["flagged"] or counts["invalid"]):
        raise typer.Exit(3)


def _pct(score: float | None, max_score: float | None) -> str:
    return "-" if score is None or not max_score else f"{100 * score / max_score:.0f}%"


def _print_table(result: ClassResult) -> None:
    from rich.table import Table

    t = Table(title=f"{result.lab}: class verdicts", title_justify="left", expand=False)
    t.add_column("hand-in", overflow="fold", max_width=20)
    t.add_column("status")
    t.add_column("score", justify="right")
    t.add_column("%", justify="right")
    t.add_column("flags", overflow="fold", max_width=30)
    style = {"graded": "green", "review": "yellow", "flagged": "yellow", "decided": "cyan", "invalid": "red"}
    for s in result.students:
        if s.score is not None:
            score = f"{s.score:g}/{s.max_score or 0:g}"
        elif s.computed_score is not None:
            score = f"({s.computed_score:g})/{s.max_score or 0:g}"  # held: what the checks give
        else:
            score = "-"
        t.add_row(
            s.handin or s.student,
            f"[{style[s.status]}]{s.status}[/]",
            score,
            _pct(s.score, s.max_score),
            ", ".join(sorted({f.code for f in s.flags})) or "",
        )
    out.print(t)


def _print_regrade(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    t = Table(title="regrade preview (nothing is published)", title_justify="left")
    for col, just in (
        ("student", "left"),
        ("before", "right"),
        ("after", "right"),
        ("change", "right"),
        ("status", "left"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        delta = r["delta_percent"]
        shown = (
            "-"
            if delta is None
            else (f"[green]+{delta:.1f}[/]" if delta > 0 else f"[red]{delta:.1f}[/]" if delta < 0 else "0")
        )
        status = (
            r["old_status"]
            if r["old_status"] == r["new_status"]
            else f"{r['old_status']} -> {r['new_status']}"
        )
        t.add_row(
            r["student"],
            _pct(r["old_score"], r["old_max"]),
            _pct(r["new_score"], r["new_max"]),
            shown,
            status,
        )
    out.print(t)
