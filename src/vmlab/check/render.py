"""Rich renderings of a lab's checks and of a verdict, sized for 80 to 100 columns.

vmlab's stdout console soft-wraps (no wrapping by rich, so long JSON lines stay whole); under that mode
rich renders a Markdown list item into a fixed-width cell without wrapping and crops it, which cut every
numbered task of a sheet to its first line. `Fit` restores wrapping for what it holds.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from vmlab.check.integrity import INTEGRITY_ID
from vmlab.check.model import Check
from vmlab.check.questions import QUESTION, QUESTION_TEXT
from vmlab.labs.model import Lab
from vmlab.report.model import CheckResult, Grade, Report


class Fit:
    """Render the inner renderable wrapped (never cropped) to at most `width` columns."""

    def __init__(self, inner: RenderableType, width: int | None = None) -> None:
        self.inner = inner
        self.width = width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width if self.width is None else min(self.width, options.max_width)
        yield from console.render(self.inner, options.update(width=width, no_wrap=False, overflow="fold"))


def _table(*columns: str, title: str | None = None) -> Table:
    """A table whose cells fold rather than end in '…', so no id or figure is ever cut."""
    table = Table(title=title, title_justify="left", expand=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


# ---- lab show ------------------------------------------------------------------------------------


def render_lab_sheet(lab: Lab, sheet_text: str | None, width: int = 100) -> list[RenderableType]:
    """The task sheet (README.md, whole) and the table of checks, for `vmlab lab show`."""
    parts: list[RenderableType] = []
    if sheet_text:
        parts.append(Fit(Markdown(sheet_text), width))
    table = Table(title=f"checks of {lab.lab.name}", title_justify="left", expand=True)
    table.add_column("check · task · kind · points", overflow="fold", ratio=2)
    table.add_column("what it asserts", overflow="fold", ratio=3)
    for c in lab.checks:
        task = c.task or ("per member" if c.each is not None else "lab")
        points = f"{c.points:g} pt" + ("" if c.points == 1 else "s") + ("" if c.required else ", optional")
        table.add_row(Text.assemble((c.id, "bold"), f"\n{task} · {c.kind} · {points}"), _what(c))
    parts.append(Fit(table, width))
    if lab.variants is not None:
        parts.append(Fit(_variants_table(lab), width))
    if lab.questions:
        parts.append(Fit(_questions_table(lab), width))
    return parts


def _variants_table(lab: Lab) -> Table:
    """The per-student parameters: what each sets and where its value comes from (never a value)."""
    assert lab.variants is not None
    title = f"your parameters (vmlab lab variant {lab.lab.name} --student ID)"
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("parameter · sets", overflow="fold", ratio=2)
    table.add_column("drawn from", overflow="fold", ratio=3)
    for name, spec in lab.variants.params.items():
        if spec.range is not None:
            lo, hi = spec.range
            source = f"{lo}..{hi}" + (f" in steps of {spec.step}" if spec.step != 1 else "")
        else:
            source = "one of " + ", ".join(repr(c) for c in spec.choices or [])
        if spec.format is not None:
            source += f", as {spec.format!r}"
        note = f"\n{spec.description}" if spec.description else ""
        table.add_row(Text.assemble((name, "bold"), f"\n{', '.join(spec.set)}"), f"{source}{note}")
    return table


def _questions_table(lab: Lab) -> Table:
    """Each task's questions: what is asked, of which kind, for how many points (never a key)."""
    from vmlab.check.answers import question_summary

    title = f"questions of {lab.lab.name} (vmlab lab answers {lab.lab.name})"
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("question · task", overflow="fold", ratio=2)
    table.add_column("asks", overflow="fold", ratio=5)
    for task in lab.tasks:
        for q in (q for q in lab.questions if q.task == task.id):
            table.add_row(
                Text.assemble((q.id, "bold"), f"\n{task.id}"),
                Text.assemble(q.prompt.strip(), (f"\n{question_summary(q)}", "dim")),
            )
    return table


def _what(c: Check) -> str:
    notes = [c.description or ""]
    if isinstance(c.each, list):
        notes.append(f"for each of {', '.join(c.each)}")
    elif c.each is not None:
        notes.append(f"for each member of {c.each}")
    if c.when:
        notes.append(f"only when {c.when}")
    if c.timing:
        notes.append("timing-based")
    return "; ".join(n for n in notes if n)


# ---- the verdict -----------------------------------------------------------------------------------

_MARK = {
    "pass": ("pass", "green"),
    "FAIL": ("FAIL", "bold red"),
    "fail": ("fail", "yellow"),
    "error": ("ERROR", "bold magenta"),
    "skipped": ("skip", "yellow"),
    "n/a": ("n/a", "dim"),
}


def _mark(r: CheckResult, advisory: bool) -> tuple[str, str]:
    if not r.applicable:
        return _MARK["n/a"]
    if r.outcome == "fail":
        return _MARK["FAIL"] if r.required and not advisory else _MARK["fail"]
    return _MARK[r.outcome]


def _headline(grade: Grade) -> Text:
    word, style = {0: ("PASS", "bold green"), 1: ("FAIL", "bold red")}.get(
        grade.exit_code, ("NOT GRADED", "bold magenta")
    )
    return Text.assemble((word, style), f" (exit {grade.exit_code})")


def _numbers(grade: Grade) -> str:
    c = grade.counts
    parts = [f"required {c.get('required_passed', 0)}/{c.get('required', 0)} passed"]
    if c.get("optional"):
        parts.append(f"optional {c.get('optional_passed', 0)}/{c['optional']} passed")
    parts.append(f"score {grade.score:g}/{grade.max_score:g}")
    if c.get("not_applicable"):
        parts.append(f"{c['not_applicable']} not applicable")
    if c.get("advisory"):
        parts.append(f"{c['advisory']} timing check(s) advisory")
    ungraded = c.get("skipped", 0) - c.get("not_applicable", 0) + c.get("error", 0)
    if ungraded:
        parts.append(f"{ungraded} not graded")
    return " · ".join(parts)


def render_verdict(
    report: Report,
    lab: Lab,
    results: list[CheckResult],
    grade: Grade,
    *,
    verbose: bool = False,
    width: int = 100,
) -> list[RenderableType]:
    """One line per task, then the checks that did not pass (all with verbose), then the totals."""
    advisory = grade.timing == "advisory"
    head = Text.assemble((f"{lab.lab.name}", "bold"), f" · run {report.run_id} · ", _headline(grade))
    tasks = _task_table(lab, results, advisory)
    asked = [r for r in results if r.kind in (QUESTION, QUESTION_TEXT)]
    shown = [
        r
        for r in results
        if r not in asked and (verbose or not r.passed or (r.id == INTEGRITY_ID and r.message))
    ]
    checks = Table.grid(padding=(0, 1))
    checks.add_column(no_wrap=True, min_width=5)
    checks.add_column(overflow="fold", ratio=1)
    for r in shown:
        word, style = _mark(r, advisory and r.timing)
        checks.add_row(Text(word, style=style), _detail(r, advisory, verbose))
    title = "checks" if verbose else "checks that did not pass"
    body: list[RenderableType] = [head, Text(_numbers(grade)), tasks]
    if shown:
        body += [Text(title, style="bold"), checks]
    if asked:
        body += [Text("questions (your answers)", style="bold"), _answers_grid(asked)]
    return [Fit(Group(*body), width)]


def _answers_grid(asked: list[CheckResult]) -> Table:
    """Every question, passed or not: a prediction's line is its feedback (predicted vs measured)."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, min_width=5)
    grid.add_column(overflow="fold", ratio=1)
    for r in asked:
        word, style = _MARK["error" if r.outcome == "error" else ("pass" if r.passed else "fail")]
        if r.kind == QUESTION_TEXT and r.passed:
            word, style = "tutor", "cyan"
        text = Text(r.id, style="bold")
        text.append(f" · {r.task or ''} · {r.score:g}/{r.points:g} pt", style="dim")
        if r.message:
            text.append(f"\n{r.message}")
        grid.add_row(Text(word, style=style), text)
    return grid


def _task_table(lab: Lab, results: list[CheckResult], advisory: bool) -> Table:
    table = _table("task", "title", "passed", "points", "state")
    titles = {t.id: t.title for t in lab.tasks}
    order = [t.id for t in lab.tasks] + [None]
    by_task: dict[str | None, list[CheckResult]] = {}
    for r in results:
        by_task.setdefault(r.task if r.task in titles else None, []).append(r)
    for task in order:
        rs = by_task.get(task)
        if not rs:
            continue
        counted = [r for r in rs if r.applicable and not (advisory and r.timing)]
        graded = [r for r in counted if r.outcome in ("pass", "fail")]
        points = f"{sum(r.score for r in counted):g}/{sum(r.points for r in graded):g}"
        table.add_row(
            task or "(lab)",
            titles.get(task, "") if task else "integrity and checks without a task",
            f"{sum(1 for r in counted if r.passed)}/{len(counted)}",
            points,
            _state(counted),
        )
    return table


def _state(rs: list[CheckResult]) -> Text:
    required = [r for r in rs if r.required]
    if any(r.outcome == "fail" for r in required):
        return Text("FAIL", style="bold red")
    if any(r.outcome in ("error", "skipped") for r in required):
        return Text("not graded", style="magenta")
    return Text("pass", style="green")


def _detail(r: CheckResult, advisory: bool, verbose: bool) -> Text:
    text = Text(r.id, style="bold")
    tags = [r.task or ""]
    if not r.required:
        tags.append("optional")
    if r.timing:
        tags.append("timing, advisory" if advisory else "timing")
    tags.append(f"{r.points:g} pt" if r.points == 1 else f"{r.points:g} pts")
    text.append(" · " + " · ".join(t for t in tags if t), style="dim")
    if r.outcome == "fail" and r.measured is not None:
        text.append(f"\nmeasured {_short(r.measured)}, expected {r.expected}")
        extra = r.message if not r.message.startswith("measured ") else ""
        if extra:
            text.append(f"\n{extra}")
    elif r.message:
        text.append(f"\n{r.message}")
    elif verbose and r.measured not in (None, "present"):
        text.append(f"\nmeasured {_short(r.measured)}, expected {r.expected}", style="dim")
    if r.description and (verbose or not r.passed):
        text.append(f"\n{r.description}", style="dim")
    return text


def _short(value: Any, n: int = 160) -> str:
    s = repr(value) if isinstance(value, str) else str(value)
    return s if len(s) <= n else s[: n - 1] + "…"


def rendered_lines(parts: Iterable[RenderableType], width: int) -> list[str]:
    """Plain text lines of renderables at a width, as a soft-wrapping console prints them (tests)."""
    console = Console(width=width, soft_wrap=True, record=True, file=io.StringIO(), color_system=None)
    for p in parts:
        console.print(p)
    return console.export_text().splitlines()
