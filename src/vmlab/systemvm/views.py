"""The compare table: rows are stages and metrics, columns native, container, sandbox and VM, with the
VM/container ratio. Kept readable at 80 columns: short cell formats, one row per trap phase."""

from __future__ import annotations

from rich.table import Table

from vmlab.report.model import Experiment, Report
from vmlab.runtime_registry import INSTANCE_KINDS

COLUMNS = ("native", *INSTANCE_KINDS)  # the host baseline, then every kind a runtime starts
Scalar = float | int | str | bool | None


def experiment_group(report: Report, key: str) -> dict[str, Experiment]:
    """The report's experiments of one group (startup, memory, traps, devices, ...) by kind; {} if none."""
    entry = report.experiments.get(key)
    return entry if isinstance(entry, dict) else {}


def _float(x: Scalar) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _secs(x: Scalar) -> str:
    v = _float(x)
    if v is None:
        return "–"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def _mib(x: Scalar) -> str:
    v = _float(x)
    return "–" if v is None else f"{v / 1048576:.1f} M"


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
    startup, memory, traps = (
        experiment_group(report, "startup"),
        experiment_group(report, "memory"),
        experiment_group(report, "traps"),
    )
    vm = startup.get("vm") or memory.get("vm") or traps.get("vm")
    accel = vm.provenance.accel if vm else None
    runs = report.params.get("runs")
    table = Table(
        title=f"vmlab compare — run {report.run_id}" + (f" (medians of {runs} runs)" if runs else "")
    )
    table.add_column("stage / metric")
    for col in COLUMNS:
        table.add_column(f"vm ({accel})" if col == "vm" and accel else col, justify="right")
    table.add_column("vm/ct", justify="right")

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
        row(stage, {k: _median(startup, k, stage) for k in COLUMNS})
    if startup:
        row("[bold]ready[/]", {k: _median(startup, k) for k in COLUMNS})
        row(
            "harness overhead",
            {k: _value(startup, k, "harness_overhead_s") for k in COLUMNS if k != "native"},
            ratio=False,
        )
        row("guest uptime at marker", {"vm": _value(startup, "vm", "guest_uptime_at_marker_s")}, ratio=False)
    if memory:
        row("mem: overhead, idle", {k: _median(memory, k) for k in COLUMNS}, fmt="mib")
        row("mem: touched, idle", {k: _value(memory, k, "idle_workload_rss") for k in COLUMNS}, "mib", False)
        row(
            "mem: touched, after", {k: _value(memory, k, "after_workload_rss") for k in COLUMNS}, "mib", False
        )
    if traps:
        heads = {k: str(exp.values.get("headline_counter") or "") for k, exp in traps.items()}
        skipped = {k: "skipped" for k, exp in traps.items() if exp.values.get("skipped")}
        table.add_row("traps: counter", *(skipped.get(k) or heads.get(k, "–") or "–" for k in COLUMNS), "")
        for phase in ("idle", "io", "cpu"):
            cells = [_count(traps.get(k), f"{phase}:{heads.get(k, '')}") for k in COLUMNS]
            table.add_row(f"traps: {phase}", *cells, "")
        if any(f"{p}:host_total" in exp.counts for exp in traps.values() for p in ("io", "cpu")):
            for phase in ("idle", "io", "cpu"):
                cells = [_count(traps.get(k), f"{phase}:host_total") for k in COLUMNS]
                table.add_row(f"  reached host, {phase}", *cells, "")
    return table


def _count(exp: Experiment | None, key: str) -> str:
    n = exp.counts.get(key) if exp is not None else None
    return "–" if n is None else f"{n:,}"
