"""PNG plots of the memory and density tasks (KSM, balloon, concurrent start), drawn by their steps
into the report's artifacts. matplotlib is imported only when a plot is drawn (Agg, no display)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from vmlab.labs.step import StepContext
from vmlab.report.model import Experiment
from vmlab.systemvm.plots import pyplot

MIB = 1024 * 1024


def attach_plot(ctx: StepContext, name: str, draw: Callable[[Path], object]) -> None:
    """Draw into the step's artifacts folder and list it; without matplotlib the plot is said skipped."""
    folder = ctx.artifacts_dir / ctx.step_id
    folder.mkdir(parents=True, exist_ok=True)
    try:
        draw(folder / name)
    except ImportError as e:
        ctx.progress(f"plot {name} skipped: {e}")
        return
    ctx.attach(folder / name)


def _num(exp: Experiment, key: str) -> float:
    v = exp.values.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


def plot_ksm(exp: Experiment, path: Path) -> Path:
    """Left: pages saved over time while ksmd scans; right: the guests' PSS with KSM off and on."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    page = _num(exp, "page_size") or 4096.0
    t = exp.series.get("t_s", [])
    for key, label in (("pages_sharing", "pages_sharing (saved)"), ("zero_pages", "zero pages merged")):
        ys = exp.series.get(key, [])
        if t and len(ys) == len(t):
            ax1.plot(t, [y * page / MIB for y in ys], label=label)
    ax1.set_xlabel("seconds after KSM was switched on")
    ax1.set_ylabel("MiB")
    ax1.set_title(f"KSM, {int(_num(exp, 'full_scans'))} full scans", fontsize=9)
    ax1.legend(fontsize=7)
    n = int(_num(exp, "guests")) or 1
    for i, key in enumerate(("pss", "uss", "rss")):
        off, on = _num(exp, f"off_{key}_total") / MIB / n, _num(exp, f"on_{key}_total") / MIB / n
        ax2.bar([i - 0.2], [off], width=0.4, color="tab:gray", label="KSM off" if i == 0 else None)
        ax2.bar([i + 0.2], [on], width=0.4, color="tab:green", label="KSM on" if i == 0 else None)
    ax2.set_xticks(range(3), ["PSS", "USS", "RSS"])
    ax2.set_ylabel("MiB per QEMU (mean)")
    ax2.set_title(f"{n} guests: memory per guest", fontsize=9)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_balloon(exp: Experiment, path: Path) -> Path:
    """The guest's MemTotal and MemAvailable and QEMU's RSS over time, the phases marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    t = exp.series.get("t_s", [])
    for key, label in (
        ("guest_total_mib", "guest MemTotal"),
        ("guest_available_mib", "guest MemAvailable"),
        ("qemu_rss_mib", "QEMU RSS (host)"),
        ("actual_mib", "balloon target (libvirt actual)"),
    ):
        ys = exp.series.get(key, [])
        if t and len(ys) == len(t):
            ax.plot(t, ys, label=label, linestyle="--" if key == "actual_mib" else "-")
    import json

    events = json.loads(str(exp.values.get("events") or "{}"))
    for name, at in events.items():
        ax.axvline(float(at), color="gray", linewidth=0.6)
        ax.text(float(at), ax.get_ylim()[1], f" {name}", fontsize=7, va="top")
    ax.set_xlabel("seconds")
    ax.set_ylabel("MiB")
    ax.set_title("virtio balloon: shrink and grow a running guest", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_density(group: Mapping[str, Experiment], path: Path) -> Path:
    """Left: p50 and p99 ready latency against K per kind; right: host memory per instance."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    for kind, exp in group.items():
        if exp.values.get("skipped"):
            continue
        ks = sorted(int(k[1:].split("_")[0]) for k in exp.series if k.endswith("_ready_s"))
        if not ks:
            continue
        p50 = [_num(exp, f"k{k}_p50_s") for k in ks]
        p99 = [_num(exp, f"k{k}_p99_s") for k in ks]
        (line,) = ax1.plot(ks, p50, marker="o", label=f"{kind} p50")
        ax1.plot(ks, p99, marker="^", linestyle="--", color=line.get_color(), label=f"{kind} p99")
        ax2.plot(ks, [_num(exp, f"k{k}_pss_per_instance") / MIB for k in ks], marker="o", label=kind)
    every_k = sorted(
        {int(k[1:].split("_")[0]) for e in group.values() for k in e.series if k.endswith("_ready_s")}
    )
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(every_k, [str(k) for k in every_k])
        ax.set_xlabel("K started at once")
        ax.legend(fontsize=7)
    ax1.set_yscale("log")
    ax1.set_ylabel("seconds to ready")
    ax1.set_title("ready latency under concurrency", fontsize=9)
    ax2.set_yscale("log")
    ax2.set_ylabel("MiB per instance (PSS)")
    ax2.set_title("host memory per instance", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
