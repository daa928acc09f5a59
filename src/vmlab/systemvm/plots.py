"""PNG plots next to a report. matplotlib is imported only here, with the Agg backend (no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vmlab.report.model import Report
from vmlab.systemvm.views import experiment_group


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (files only, no display), imported when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_startup(report: Report, path: Path) -> Path | None:
    """Stacked bar per kind: each readiness stage's share of the median time to ready."""
    group = experiment_group(report, "startup")
    if not group:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    colors: dict[str, str] = {}
    longest = 0.0
    palette = plt.get_cmap("tab10").colors
    for y, exp in enumerate(group.values()):
        left = 0.0
        for stage, m in exp.stages.items():
            if stage == "create_called":
                continue
            end = m.summary.median
            color = colors.setdefault(stage, palette[len(colors) % len(palette)])
            label = None if stage in _seen(ax) else stage
            ax.barh(y, max(end - left, 0.0), left=left, color=color, edgecolor="white", label=label)
            left = max(left, end)
        ax.text(
            left, y, f"  {left * 1000:.1f} ms" if left < 1 else f"  {left:.2f} s", va="center", fontsize=8
        )
        longest = max(longest, left)
    labels = [
        f"{k} ({e.provenance.accel})" if e.provenance.accel not in (None, "none") else k
        for k, e in group.items()
    ]
    ax.set_yticks(range(len(group)), labels)
    ax.set_xlim(0, longest * 1.15 or 1.0)
    ax.set_xlabel("seconds from 'create' (median of runs)")
    ax.set_title("Start-up ladder")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _seen(ax: Any) -> set[str]:
    return {str(h.get_label()) for h in ax.get_legend_handles_labels()[0]}


def plot_memory(report: Report, path: Path) -> Path | None:
    group = experiment_group(report, "memory")
    if not group:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    kinds = [k for k in group if group[k].summary is not None]
    mib = 1024 * 1024
    overhead = [(s.median if (s := group[k].summary) else 0.0) / mib for k in kinds]
    touched = [float(group[k].values.get("idle_workload_rss", 0) or 0) / mib for k in kinds]
    ax.bar(kinds, overhead, label="overhead (runtime's own memory)")
    ax.bar(kinds, touched, bottom=overhead, label="memory the workload/guest touched")
    ax.set_ylabel("MiB at idle after ready")
    ax.set_title("Memory: overhead vs touched")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_traps(report: Report, path: Path) -> Path | None:
    group = experiment_group(report, "traps")
    if not group:
        return None
    plt = pyplot()
    group = {k: e for k, e in group.items() if not e.values.get("skipped")}
    if not group:
        return None
    fig, axes = plt.subplots(1, len(group), figsize=(4 * len(group), 3.5), squeeze=False)
    for ax, (kind, exp) in zip(axes[0], group.items(), strict=True):
        headline = exp.values.get("headline_counter")
        phases = [p for p in ("idle", "io", "cpu") if f"{p}:{headline}" in exp.counts]
        ax.bar(phases, [exp.counts[f"{p}:{headline}"] for p in phases])
        ax.set_title(f"{kind}: {headline}\n({exp.provider})", fontsize=8)
        ax.set_ylabel("count during phase")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_plots(report: Report, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    made = [
        plot_startup(report, directory / "startup.png"),
        plot_memory(report, directory / "memory.png"),
        plot_traps(report, directory / "traps.png"),
    ]
    return [p for p in made if p is not None]
