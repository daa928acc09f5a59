"""Tables and plots of the devices and vcpus steps (80 columns; matplotlib imported only when plotting).

`lab_table` and `lab_plots` are the lab's views: the compare table and plots where the report holds
compare's groups, then these where it holds `devices` or `vcpus`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table

from vmlab.report.model import Experiment, Report
from vmlab.systemvm.views import experiment_group

KINDS = ("vm", "sandbox", "container")
PHASES = ("idle", "io", "cpu")
SHORT = {
    "device accesses (TCG)": "device acc.",
    "VM exits (KVM)": "VM exits",
    "Sentry-handled calls": "Sentry calls",
    "system calls": "syscalls",
}


def _n(x: int | None) -> str:
    return "–" if x is None else f"{x:,}"


def _f(x: Any, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, int | float) and not isinstance(x, bool) else "–"


def devices_table(report: Report) -> Table | None:
    """Per phase, what each kind's trap counter saw: device accesses or exits, Sentry calls, syscalls."""
    group = experiment_group(report, "devices")
    if not group:
        return None
    kinds = [k for k in KINDS if k in group]
    table = Table(title="Traps per phase, by who handles them")
    table.add_column("phase")
    for k in kinds:
        exp = group[k]
        what = "skipped" if exp.values.get("skipped") else SHORT.get(str(exp.values.get("measure")), "count")
        table.add_column(f"{k}\n{what}", justify="right")
    for phase in PHASES:
        table.add_row(phase, *(_n(group[k].counts.get(f"headline:{phase}")) for k in kinds))
    vm = group.get("vm")
    if vm is not None and vm.values.get("regions"):
        want = vm.values.get("expected_serial_thr_writes")
        got = vm.counts.get("io:serial:thr_write")
        table.add_row("io: serial THR", _n(got), *([""] * (len(kinds) - 1)))
        table.add_row("  expected", _n(want if isinstance(want, int) else None), *([""] * (len(kinds) - 1)))
    return table


def regions_table(report: Report) -> Table | None:
    """The guest's device accesses per region and phase, reads/writes."""
    vm = experiment_group(report, "devices").get("vm")
    if vm is None or not vm.values.get("regions"):
        return None
    table = Table(title="Guest device accesses per region (reads/writes)")
    table.add_column("region")
    for phase in PHASES:
        table.add_column(phase, justify="right")
    for region in str(vm.values["regions"]).split(","):
        cells = []
        for phase in PHASES:
            r = vm.counts.get(f"{phase}:{region}:read", 0)
            w = vm.counts.get(f"{phase}:{region}:write", 0)
            cells.append(f"{r:,}/{w:,}")
        table.add_row(region, *cells)
    return table


def vcpus_table(report: Report) -> Table | None:
    group = experiment_group(report, "vcpus")
    vm, ct = group.get("vm"), group.get("container")
    if not group:
        return None
    counts: list[str] = []
    for exp in (vm, ct):
        if exp is not None and not exp.values.get("skipped"):
            counts += [c for c in str(exp.values.get("vcpus", "")).split(",") if c and c not in counts]
    mode = vm.values.get("threading") if vm is not None else None
    loops = (vm or ct).values.get("loops") if (vm or ct) is not None else None  # type: ignore[union-attr]
    table = Table(title=f"{loops} busy loops on 1..n CPUs" + (f" (vm: {mode}-threaded TCG)" if mode else ""))
    for col in ("cpus", "vm boot", "vm run", "vm ×", "threads", "ct run", "ct ×"):
        table.add_column(col, justify="right")
    for c in counts:

        def v(exp: Experiment | None, key: str, c: str = c) -> Any:
            return exp.values.get(f"{key}:{c}") if exp is not None else None

        threads = vm.counts.get(f"vcpu_threads:{c}") if vm is not None else None
        table.add_row(
            c,
            _f(v(vm, "boot_s"), ".2f"),
            _f(v(vm, "elapsed_s"), ".2f"),
            _f(v(vm, "speedup"), ".2f"),
            _n(threads),
            _f(v(ct, "elapsed_s"), ".2f"),
            _f(v(ct, "speedup"), ".2f"),
        )
    return table


def lab_table(report: Report) -> Group:
    """The system-vm lab's table view: compare's, then the part-3 tables the report has data for."""
    from vmlab.systemvm.views import compare_table

    parts: list[Any] = []
    if any(k in report.experiments for k in ("startup", "memory", "traps")):
        parts.append(compare_table(report))
    for make in (devices_table, regions_table, vcpus_table):
        t = make(report)
        if t is not None:
            parts.append(t)
    return Group(*parts)


# ---- plots ----------------------------------------------------------------------------------------


def plot_devices(report: Report, path: Path) -> Path | None:
    """Left: each kind's trap count per phase (log scale). Right: the guest's accesses per region."""
    group = {k: e for k, e in experiment_group(report, "devices").items() if not e.values.get("skipped")}
    if not group:
        return None
    from vmlab.systemvm.plots import pyplot

    plt = pyplot()
    vm = group.get("vm")
    regions = str(vm.values.get("regions") or "").split(",") if vm is not None else []
    regions = [r for r in regions if r]
    fig, axes = plt.subplots(1, 2 if regions else 1, figsize=(10 if regions else 6, 3.8), squeeze=False)
    ax = axes[0][0]
    width = 0.8 / max(len(group), 1)
    for i, (kind, exp) in enumerate(group.items()):
        ys = [max(exp.counts.get(f"headline:{p}", 0), 0) for p in PHASES]
        xs = [j + i * width for j in range(len(PHASES))]
        bars = ax.bar(xs, ys, width, label=f"{kind}: {exp.values.get('measure')}")
        ax.bar_label(bars, labels=[f"{y:,}" for y in ys], fontsize=6)
    ax.set_xticks([j + width * (len(group) - 1) / 2 for j in range(len(PHASES))], list(PHASES))
    ax.set_yscale("symlog", linthresh=1)  # a phase may count 0 (an idle container makes no call)
    ax.set_ylabel("count during phase (log)")
    ax.set_title("Traps per phase, by who handles them", fontsize=9)
    ax.legend(fontsize=7)
    if regions and vm is not None:
        ax2 = axes[0][1]
        bottom = [0.0] * len(PHASES)
        for region in regions:
            stack = [
                float(vm.counts.get(f"{p}:{region}:read", 0) + vm.counts.get(f"{p}:{region}:write", 0))
                for p in PHASES
            ]
            ax2.bar(list(PHASES), stack, bottom=bottom, label=region)
            bottom = [b + y for b, y in zip(bottom, stack, strict=True)]
        ax2.set_ylabel("device accesses (reads + writes)")
        ax2.set_title(f"Guest device regions ({str(vm.provider).split(':')[0]})", fontsize=9)
        ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_vcpus(report: Report, path: Path) -> Path | None:
    """Left: speedup against CPUs (guest, container, ideal). Right: the guest's boot time."""
    group = {k: e for k, e in experiment_group(report, "vcpus").items() if not e.values.get("skipped")}
    if not group:
        return None
    from vmlab.systemvm.plots import pyplot

    plt = pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    top = 1
    for kind, exp in group.items():
        cs = [int(c) for c in str(exp.values.get("vcpus", "")).split(",") if c]
        pts = [(c, exp.values.get(f"speedup:{c}")) for c in cs]
        xs = [c for c, s in pts if isinstance(s, int | float)]
        ys = [float(s) for _, s in pts if isinstance(s, int | float)]
        label = (
            f"{kind} ({exp.values.get('threading')}-threaded TCG)" if exp.values.get("threading") else kind
        )
        ax.plot(xs, ys, marker="o", label=label)
        top = max([top, *cs])
        if kind == "vm":
            boots = [(c, exp.values.get(f"boot_s:{c}")) for c in cs]
            bx = [c for c, b in boots if isinstance(b, int | float)]
            by = [float(b) for _, b in boots if isinstance(b, int | float)]
            ax2.bar([str(c) for c in bx], by)
    ax.plot([1, top], [1, top], linestyle="--", color="grey", label="ideal")
    ax.set_xticks(range(1, top + 1))
    ax.set_xlabel("CPUs (guest vCPUs / container --cpus)")
    ax.set_ylabel("speedup over 1 CPU")
    ax.set_title("Parallel busy loops", fontsize=9)
    ax.legend(fontsize=7)
    ax2.set_xlabel("vCPUs")
    ax2.set_ylabel("s from create to first command")
    ax2.set_title("Guest boot time", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_part3_plots(report: Report, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    made = [plot_devices(report, directory / "devices.png"), plot_vcpus(report, directory / "vcpus.png")]
    return [p for p in made if p is not None]


def lab_plots(report: Report, directory: Path) -> list[Path]:
    """The system-vm lab's plots view: compare's plots, then the part-3 ones."""
    from vmlab.systemvm.plots import write_plots

    return [*write_plots(report, directory), *write_part3_plots(report, directory)]
