"""The compare table: rows are stages and metrics, columns native, container and VM, with ratios."""

from __future__ import annotations

from rich.table import Table

from vmlab.report.model import Experiment, Report

COLUMNS = ("native", "container", "vm")


def _group(report: Report, key: str) -> dict[str, Experiment]:
    entry = report.experiments.get(key)
    return entry if isinstance(entry, dict) else {}


def _secs(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def _mib(x: float | int | str | bool | None) -> str:
    return f"{float(x) / 1048576:.1f} MiB" if isinstance(x, int | float) and not isinstance(x, bool) else "–"


def _ratio(vm: float | None, ct: float | None) -> str:
    if vm is None or ct is None or ct == 0:
        return "–"
    return f"{vm / ct:.1f}×"


def compare_table(report: Report) -> Table:
    startup, memory, traps = _group(report, "startup"), _group(report, "memory"), _group(report, "traps")
    vm_accel = (startup.get("vm") or memory.get("vm") or traps.get("vm"))
    accel = vm_accel.provenance.accel if vm_accel else None
    table = Table(title=f"vmlab compare — run {report.run_id}")
    table.add_column("stage / metric")
    for col in COLUMNS:
        table.add_column(f"vm ({accel})" if col == "vm" and accel else col, justify="right")
    table.add_column("vm / container", justify="right")

    stages: list[str] = []
    for exp in startup.values():
        stages += [s for s in exp.stages if s not in stages and s != "create_called"]
    for stage in stages:
        cells = {k: (startup[k].stages[stage].summary.median if k in startup and stage in startup[k].stages else None)
                 for k in COLUMNS}
        table.add_row(f"start: {stage} (median)", *(_secs(cells[k]) for k in COLUMNS), _ratio(cells["vm"], cells["container"]))
    ready = {k: startup[k].summary.median if k in startup and startup[k].summary else None for k in COLUMNS}
    if startup:
        table.add_row("[bold]start: ready (median)[/]", *(_secs(ready[k]) for k in COLUMNS), _ratio(ready["vm"], ready["container"]))
        overhead = {k: startup[k].values.get("harness_overhead_s") for k in COLUMNS if k in startup}
        table.add_row("harness overhead", "–", *(_secs(overhead.get(k)) for k in ("container", "vm")), "")  # type: ignore[arg-type]
        if "vm" in startup and "guest_uptime_at_marker_s" in startup["vm"].values:
            table.add_row("guest uptime at marker", "–", "–", _secs(startup["vm"].values["guest_uptime_at_marker_s"]), "")  # type: ignore[arg-type]
    if memory:
        over = {k: memory[k].summary.median if k in memory and memory[k].summary else None for k in COLUMNS}
        table.add_row("memory: overhead at idle", "–", _mib(over["container"]), _mib(over["vm"]), _ratio(over["vm"], over["container"]))
        for label, key in (("memory: touched at idle", "idle_workload_rss"), ("memory: touched after workload", "after_workload_rss")):
            cells2 = {k: memory[k].values.get(key) if k in memory else None for k in COLUMNS}
            table.add_row(label, "–", _mib(cells2["container"]), _mib(cells2["vm"]), "")
    for kind in ("container", "vm"):
        exp = traps.get(kind)
        if exp is None:
            continue
        head = exp.values.get("headline_counter")
        for phase in ("idle", "io", "cpu"):
            n = exp.counts.get(f"{phase}:{head}")
            cells3 = ["–", str(n) if kind == "container" and n is not None else "–",
                      str(n) if kind == "vm" and n is not None else "–"]
            table.add_row(f"traps: {kind} {head} during {phase}", *cells3, "")
    return table
