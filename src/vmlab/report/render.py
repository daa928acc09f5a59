"""Rich tables of a report, for `vmlab report show`."""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import RenderableType
from rich.table import Table

from vmlab.report.model import CheckResult, Experiment, Report, Summary


def _num(x: float) -> str:
    return f"{x:.4g}"


def _summary(s: Summary | None) -> str:
    if s is None:
        return ""
    return f"{_num(s.median)} [{_num(s.min)}–{_num(s.max)}] n={s.n}"


def _rows(key: str, exp: Experiment) -> Iterator[tuple[str, str, str, str]]:
    source = exp.provider or exp.provenance.counter_source or exp.provenance.backend or ""
    if exp.summary is not None:
        yield key, exp.unit, _summary(exp.summary), source
    for stage, m in exp.stages.items():
        yield f"{key}.stages.{stage}", m.unit, _summary(m.summary), source
    for name, count in exp.counts.items():
        yield f"{key}.counts.{name}", "count", str(count), source
    for name, value in exp.values.items():
        yield f"{key}.values.{name}", "", _num(value) if isinstance(value, float) else str(value), source
    if exp.text:
        text = exp.text.strip().replace("\n", "⏎")
        yield f"{key}.text", "", text[:60] + ("…" if len(text) > 60 else ""), source


def render_report(report: Report) -> Iterator[RenderableType]:
    h = report.host
    head = Table.grid(padding=(0, 2))
    head.add_row("lab", report.lab)
    head.add_row("run", f"{report.run_id} ({report.created_at:%Y-%m-%d %H:%M:%S} UTC)")
    head.add_row("host", f"{h.hostname}: {h.cpu_model}, {h.cpu_count} CPUs, {h.os}, kernel {h.kernel}")
    head.add_row("accel", f"{h.accel} ({h.accel_reason})")
    yield head
    table = Table(title="experiments")
    for col in ("measurement", "unit", "median [min–max] n / value", "source"):
        table.add_column(col, overflow="fold")
    for where, exp in report.each_experiment():
        for row in _rows(where, exp):
            table.add_row(*row)
    yield table
    if report.checks is not None:
        checks = Table(title="checks")
        for col in ("check", "result", "measured", "expected"):
            checks.add_column(col, overflow="fold")
        for c in report.checks:
            checks.add_row(c.id, _outcome(c), "" if c.measured is None else str(c.measured), c.expected)
        yield checks
    if report.grade is not None:
        g = report.grade
        verdict = "pass" if g.passed else "not passed"
        yield f"grade: {verdict} (exit {g.exit_code}), score {g.score:g}/{g.max_score:g}"


def _outcome(c: CheckResult) -> str:
    """The outcome as `vmlab check` shows it: a failing optional check is not a red FAIL."""
    if not c.applicable:
        return "[dim]n/a[/]"
    return {
        "pass": "[green]pass[/]",
        "fail": "[red]FAIL[/]" if c.required else "[yellow]fail (optional)[/]",
        "skipped": "[yellow]skipped[/]",
        "error": "[magenta]error[/]",
    }[c.outcome]
