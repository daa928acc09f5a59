"""The os-virt report as one table: what creating a container costs, box against runc, Docker, gVisor."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from vmlab.report.model import Experiment, Report, Summary

CREATE_ORDER = ("python", "box", "runc", "runc-rootless", "docker", "runsc")


def _group(report: Report, key: str) -> dict[str, Experiment]:
    entry = report.experiments.get(key)
    return entry if isinstance(entry, dict) else {}


def _row(section: str, name: str, unit: str, s: Summary) -> dict[str, Any]:
    return {"section": section, "name": name, "unit": unit, "median": s.median, "iqr": s.iqr, "n": s.n}


def rows(report: Report) -> list[dict[str, Any]]:
    """One row per measured figure: section, name, unit, median, iqr, repeats (what --json prints)."""
    out: list[dict[str, Any]] = []
    create, ns = _group(report, "cost"), _group(report, "ns-cost")
    for name in [n for n in CREATE_ORDER if n in create] + [n for n in create if n not in CREATE_ORDER]:
        if (s := create[name].summary) is not None:
            out.append(_row("create", name, create[name].unit, s))
    box = create.get("box")
    for stage, m in box.stages.items() if box else []:
        out.append(_row("box stage", stage, m.unit, m.summary))
    for name, exp in ns.items():
        if exp.summary is not None:
            out.append(_row("namespace", name, exp.unit, exp.summary))
    return out


def table(report: Report) -> Table:
    """At most 80 columns: section, name, median, iqr, unit, repeats."""
    t = Table(title=f"os-virt cost, run {report.run_id}")
    for col, just in (("what", "left"), ("name", "left"), ("median", "right"), ("iqr", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    t.add_column("unit")
    t.add_column("n", justify="right")
    for r in rows(report):
        t.add_row(r["section"], r["name"], f"{r['median']:.2f}", f"{r['iqr']:.2f}", r["unit"], str(r["n"]))
    return t
