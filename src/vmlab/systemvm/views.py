"""The compare table: rows are stages and metrics, columns native, container and VM, with ratios."""

from __future__ import annotations

from rich.table import Table

from vmlab.report.model import Experiment, Report

COLUMNS = ("native", "container", "vm")
Scalar = float | int | str | bool | None


def _group(report: Report, key: str) -> dict[str, Experiment]:
    entry = report.experiments.get(key)
    return entry if isinstance(entry, dict) else {}


def _float(x: Scalar) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _secs(x: Scalar) -> str:
    v = _float(x)
    if v is None:
        return "–"
    return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"


def _mib(x: Scalar) -> str:
    v = _float(x)
    return "–" if v is None else f"{v / 1048576:.1f} MiB"


def _ratio(vm: float | None, ct: float | None) -> str:
    if vm is None or ct is None or ct == 0:
        return "–"
    return f"{vm / ct:.1f}×"


def _median(group: dict[str, Experiment], kind: str, stage: str | None = None) -> float | None:
    exp = group.get(kind)
    if exp is None:
        return None
    if stage is None:
        return exp.summary.median if exp.summary else None
    m = exp.stages.get(stage)
    return m.summary.median if m else None


def _value(group: dict[str, Experiment], kind: str, key: str) -> Scalar:
    exp = group.get(kind)
    return exp.values.get(key) if exp else None


def compare_table(report: Report) -> Table:
    startup, memory, traps = _group(report, "startup"), _group(report, "memory"), _group(report, "traps")
    vm = startup.get("vm") or memory.get("vm") or traps.get("vm")
    accel = vm.provenance.accel if vm else None
    runs = report.params.get("runs")
    table = Table(
        title=f"vmlab compare — run {report.run_id}" + (f" (medians of {runs} runs)" if runs else "")
    )
    table.add_column("stage / metric")
    for col in COLUMNS:
        table.add_column(f"vm ({accel})" if col == "vm" and accel else col, justify="right")
    table.add_column("vm / container", justify="right")

    def row(label: str, cells: dict[str, Scalar], fmt: str = "s", ratio: bool = True) -> None:
        show = _secs if fmt == "s" else _mib
        r = _ratio(_float(cells.get("vm")), _float(cells.get("container"))) if ratio else ""
        table.add_row(label, *(show(cells.get(k)) for k in COLUMNS), r)

    # one row per stage, in the order they happen (by the latest median across kinds)
    reached: dict[str, float] = {}
    for exp in startup.values():
        for s, m in exp.stages.items():
            if s != "create_called":
                reached[s] = max(reached.get(s, m.summary.median), m.summary.median)
    stages = sorted(reached, key=lambda s: reached[s])
    for stage in stages:
        row(f"start: {stage}", {k: _median(startup, k, stage) for k in COLUMNS})
    if startup:
        row("[bold]start: ready[/]", {k: _median(startup, k) for k in COLUMNS})
        row(
            "harness overhead",
            {k: _value(startup, k, "harness_overhead_s") for k in ("container", "vm")},
            ratio=False,
        )
        row("guest uptime at marker", {"vm": _value(startup, "vm", "guest_uptime_at_marker_s")}, ratio=False)
    if memory:
        row("memory: overhead at idle", {k: _median(memory, k) for k in COLUMNS}, fmt="mib")
        row(
            "memory: touched at idle",
            {k: _value(memory, k, "idle_workload_rss") for k in COLUMNS},
            "mib",
            False,
        )
        row(
            "memory: touched after workload",
            {k: _value(memory, k, "after_workload_rss") for k in COLUMNS},
            "mib",
            False,
        )
    for kind, exp in traps.items():
        head = exp.values.get("headline_counter")
        for phase in ("idle", "io", "cpu"):
            n = exp.counts.get(f"{phase}:{head}")
            cells = ["–"] * len(COLUMNS)
            if kind in COLUMNS and n is not None:
                cells[COLUMNS.index(kind)] = str(n)
            table.add_row(f"traps: {kind} {head}, {phase}", *cells, "")
    return table
