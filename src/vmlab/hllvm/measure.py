"""The lab's measurements as report Experiments, shared by the step runners and `vmlab hllvm`.

Each function starts fresh JVMs (one per configuration, so one run's profile never leaks into
another's), parses what they print and returns Experiments plus the raw logs worth keeping. Timings
come from the workloads themselves (System.nanoTime around each repetition), so JVM start-up and
class loading are not in the ns/iteration figures; repetitions before `warmup` are kept in the series
(the warm-up curve) but left out of the samples.
"""

from __future__ import annotations

import functools
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from vmlab.errors import VmlabError
from vmlab.hllvm.jvm import UnexpectedJvmOutput, Workloads, java_version, run_java
from vmlab.hllvm.parse import (
    THRESHOLD_FLAGS,
    Rep,
    parse_checksum,
    parse_class_load,
    parse_flags_final,
    parse_gc_log,
    parse_print_compilation,
    parse_print_inlining,
    parse_reps,
    summarize_method,
)
from vmlab.hllvm.versions import KNOWN, version_note
from vmlab.report.model import Experiment, Provenance
from vmlab.report.stats import summarize

Progress = Callable[[str], None]

# mode -> JVM flags; the order is the order of the table
MODES: dict[str, list[str]] = {
    "interpreter": ["-Xint"],
    "c1": ["-XX:TieredStopAtLevel=1"],
    "c2": ["-XX:-TieredCompilation"],
    "tiered": [],
}
MORPHISM = {"mono": 1, "bi": 2, "mega": 3}
HOT_METHOD = "HotLoop::loop"
# The JVM's own tty output (PrintCompilation, PrintInlining) goes to stdout by default, where compiler
# threads tear the workload's lines apart; on stderr the workload's stdout stays clean.
VM_OUTPUT_TO_STDERR = ["-XX:+DisplayVMOutputToStderr"]


@dataclass
class Measured:
    """Experiments keyed by variant, and logs to attach (file name -> text)."""

    experiments: dict[str, Experiment]
    logs: dict[str, str] = field(default_factory=dict)


def _nop(_: str) -> None:
    return None


def _provenance(notes: list[str]) -> Provenance:
    return Provenance(
        backend="hotspot", counter_source="workload System.nanoTime", notes=[*notes, *_jdk_notes()]
    )


@functools.lru_cache(maxsize=1)
def _jdk_notes() -> tuple[str, ...]:
    """The one line every experiment carries when the JDK is outside the releases the lab knows."""
    try:
        note = version_note(java_version())
    except VmlabError:
        return ()
    return (note,) if note else ()


def _reps(text: str, argv: list[str], expected: int) -> list[Rep]:
    reps = parse_reps(text)
    if len(reps) != expected:
        raise UnexpectedJvmOutput(
            f"expected {expected} 'VMLAB rep=' lines from {' '.join(argv[-4:])}, found {len(reps)}",
            hint="the workload classes may be stale: remove vmlab_home()/hllvm/classes",
        )
    return reps


def _timed(reps: list[Rep], warmup: int) -> tuple[list[float], list[float]]:
    """(samples after warm-up, every repetition) in ns per iteration."""
    series = [r.ns_per_iter for r in reps]
    samples = series[warmup:] or series[-1:]
    return samples, series


def jit_modes(
    wl: Workloads,
    *,
    iters: int,
    repeats: int,
    warmup: int,
    modes: list[str],
    progress: Progress = _nop,
) -> Measured:
    """ns per loop iteration under each execution mode (interpreter, C1, C2, tiered)."""
    version = java_version()
    if note := version_note(version):
        progress(f"hll-vm: {note}")
    out: dict[str, Experiment] = {}
    logs: dict[str, str] = {}
    for mode in modes:
        flags = MODES[mode]
        progress(f"hll-vm: HotLoop {iters} x {repeats} in mode {mode} {' '.join(flags)}".rstrip())
        args = [*flags, "-cp", str(wl.classpath), "HotLoop", str(iters), str(repeats)]
        run = run_java(args)
        logs[f"hotloop-{mode}.txt"] = run.stdout
        samples, series = _timed(_reps(run.stdout, args, repeats), warmup)
        out[mode] = Experiment(
            unit="ns/iter",
            samples=samples,
            summary=summarize(samples),
            provenance=_provenance(
                [
                    f"java {version}, flags: {' '.join(flags) or '(default: tiered)'}",
                    f"samples: repetitions {warmup}..{repeats - 1} of {iters} iterations; "
                    "series.ns_per_iter: every repetition (the warm-up curve)",
                ]
            ),
            provider="vmlab.hllvm",
            counts={"iters": iters, "repeats": repeats, "warmup": warmup},
            values={"flags": " ".join(flags), "checksum": str(parse_checksum(run.stdout)), "java": version},
            series={"ns_per_iter": series},
        )
    return Measured(out, logs)


def jit_events(wl: Workloads, *, iters: int, repeats: int, progress: Progress = _nop) -> Measured:
    """-XX:+PrintCompilation of the hot loop under default tiered compilation, summarised."""
    progress("hll-vm: HotLoop with -XX:+PrintCompilation")
    args = [*VM_OUTPUT_TO_STDERR, "-XX:+PrintCompilation", "-cp", str(wl.classpath), "HotLoop"]
    args += [str(iters), str(repeats)]
    run = run_java(args)
    events = parse_print_compilation(run.stderr)
    if not events:
        raise UnexpectedJvmOutput(
            "-XX:+PrintCompilation printed no line in the known format "
            f"(OpenJDK {', '.join(str(k) for k in sorted(KNOWN))})",
            hint="install one of those (make setup installs the newest the release offers)",
        )
    s = summarize_method(events, HOT_METHOD)
    counts: dict[str, int] = {
        "events": len(events),
        "compiles_all_methods": sum(1 for e in events if e.is_compile),
        "osr_all_methods": sum(1 for e in events if e.is_compile and e.osr),
        "not_entrant": s.not_entrant,
    }
    values: dict[str, float | int | str | bool | None] = {"method": HOT_METHOD}
    for tier in ("1", "2", "3", "4", "c2"):
        key = f"tier{tier}" if tier != "c2" else "c2"
        counts[f"compiles_{key}"] = s.compiles.get(tier, 0)
        counts[f"osr_{key}"] = s.osr.get(tier, 0)
        if tier in s.first_compile_ms:
            values[f"first_compile_ms_{key}"] = s.first_compile_ms[tier]
        if tier in s.first_osr_ms:
            values[f"first_osr_ms_{key}"] = s.first_osr_ms[tier]
    lines = [ln for ln in run.stderr.splitlines() if HOT_METHOD in ln]
    first = [float(v) for k, v in values.items() if k.startswith("first_") and isinstance(v, int)]
    events_exp = Experiment(
        unit="ms",
        samples=first,
        summary=summarize(first) if first else None,
        provenance=_provenance(
            [
                "times: ms since JVM start when a compilation of HotLoop::loop was queued (PrintCompilation)",
                "osr_*: on-stack-replacement compilations (the '%' column); not_entrant: nmethods of the "
                "loop made not entrant (deoptimised or replaced by a higher tier)",
            ]
        ),
        provider="vmlab.hllvm",
        counts=counts,
        values=values,
        text="\n".join(lines),
        series={"compile_ms": [float(e.ts_ms) for e in events if e.method == HOT_METHOD and e.is_compile]},
    )
    progress("hll-vm: -XX:+PrintFlagsFinal")
    flags_run = run_java(["-XX:+PrintFlagsFinal", "-version"])
    flags = parse_flags_final(flags_run.stdout)
    if "CompileThreshold" not in flags:
        raise UnexpectedJvmOutput("-XX:+PrintFlagsFinal printed no CompileThreshold line")
    thresholds = Experiment(
        unit="flag",
        provenance=_provenance(["java -XX:+PrintFlagsFinal -version: the JVM's effective values"]),
        provider="vmlab.hllvm",
        values={name: flags[name].as_number() for name in THRESHOLD_FLAGS if name in flags},
    )
    return Measured(
        {"events": events_exp, "thresholds": thresholds},
        {
            "printcompilation.txt": run.stderr,
            "hotloop-printcompilation.out.txt": run.stdout,
            "flagsfinal.txt": flags_run.stdout,
        },
    )


def inline_caches(
    wl: Workloads, *, iters: int, repeats: int, warmup: int, progress: Progress = _nop
) -> Measured:
    """ns per interface call with 1, 2 and 3 receiver classes, and what C2 inlined at that call site."""
    out: dict[str, Experiment] = {}
    logs: dict[str, str] = {}
    for name, kinds in MORPHISM.items():
        progress(f"hll-vm: CallSite with {kinds} receiver class(es)")
        args = [
            *VM_OUTPUT_TO_STDERR,
            "-XX:+UnlockDiagnosticVMOptions",
            "-XX:+PrintInlining",
            "-XX:+PrintCompilation",
            "-cp",
            str(wl.classpath),
            "CallSite",
            str(kinds),
            str(iters),
            str(repeats),
        ]
        run = run_java(args)
        logs[f"callsite-{name}.txt"] = run.stderr
        logs[f"callsite-{name}.out.txt"] = run.stdout
        samples, series = _timed(_reps(run.stdout, args, repeats), warmup)
        decisions = [
            d for d in parse_print_inlining(run.stderr) if d.depth == 0 and d.method.endswith("::area")
        ]
        hot = sorted({d.method for d in decisions if d.message == "inline (hot)"})
        seen = sorted({f"{d.method}: {d.message}" for d in decisions})
        out[name] = Experiment(
            unit="ns/call",
            samples=samples,
            summary=summarize(samples),
            provenance=_provenance(
                [
                    f"{kinds} receiver class(es) at one invokeinterface; ns per loop iteration, the call "
                    "and an array load",
                    "inlining: -XX:+PrintInlining decisions for the ::area call site (all tiers)",
                ]
            ),
            provider="vmlab.hllvm",
            counts={
                "receivers": kinds,
                "inlined_hot": len(hot),
                "virtual_call": sum(1 for d in decisions if d.message == "virtual call"),
            },
            values={"inlined_hot": ", ".join(hot), "checksum": str(parse_checksum(run.stdout))},
            text="\n".join(seen),
            series={"ns_per_call": series},
        )
    return Measured(out, logs)


def gc_pauses(
    wl: Workloads,
    *,
    iters: int,
    repeats: int,
    heap_mb: int,
    collector: str,
    progress: Progress = _nop,
) -> Measured:
    """GC pauses of the allocation loop from -Xlog:gc: collector, cause, heap before/after, pause."""
    progress(f"hll-vm: Alloc with -Xlog:gc, {collector}, -Xmx{heap_mb}m")
    args = [
        f"-XX:+Use{collector}GC",
        f"-Xmx{heap_mb}m",
        "-Xlog:gc:stderr",
        "-cp",
        str(wl.classpath),
        "Alloc",
        str(iters),
        str(repeats),
    ]
    run = run_java(args)
    used, pauses = parse_gc_log(run.stderr)
    if used is None:
        raise UnexpectedJvmOutput("-Xlog:gc printed no 'Using <collector>' line in the known format")
    reps = _reps(run.stdout, args, repeats)
    ms = [p.pause_ms for p in pauses]
    kinds = Counter(p.kind.split()[0].lower() for p in pauses)
    causes = Counter(p.cause for p in pauses)
    exp = Experiment(
        unit="ms",
        samples=ms,
        summary=summarize(ms) if ms else None,
        provenance=_provenance(
            [
                "samples: every stop-the-world pause -Xlog:gc reported (ms, the JVM's own timer)",
                "series: per pause, in order: pause_ms, heap_before_mb, heap_after_mb, uptime_s",
            ]
        ),
        provider="vmlab.hllvm",
        counts={"pauses": len(pauses), **{f"pauses_{k}": v for k, v in kinds.items()}},
        values={
            "collector": used,
            "heap_max_mb": heap_mb,
            "total_pause_ms": round(sum(ms), 3),
            "max_pause_ms": max(ms) if ms else None,
            "causes": ", ".join(f"{c or '-'} x{n}" for c, n in causes.most_common()),
            "loop_ms": round(sum(r.ns for r in reps) / 1e6, 3),
        },
        text="\n".join(
            f"GC({p.gc_id}) {p.uptime_s:.3f}s {p.kind}"
            + (f" ({p.cause})" if p.cause else "")
            + f" {p.before_mb:g}M->{p.after_mb:g}M({p.heap_mb:g}M) {p.pause_ms:.3f}ms"
            for p in pauses
        ),
        series={
            "pause_ms": ms,
            "heap_before_mb": [p.before_mb for p in pauses],
            "heap_after_mb": [p.after_mb for p in pauses],
            "uptime_s": [p.uptime_s for p in pauses],
        },
    )
    logs = {f"gc-{collector.lower()}.txt": run.stderr, f"alloc-{collector.lower()}.out.txt": run.stdout}
    return Measured({"pauses": exp}, logs)


def class_loading(wl: Workloads, *, runs: int, progress: Progress = _nop) -> Measured:
    """Classes loaded to run a trivial program, with the CDS archive (default) and without (-Xshare:off)."""
    out: dict[str, Experiment] = {}
    logs: dict[str, str] = {}
    for name, flags in (("cds", ["-Xshare:auto"]), ("no-cds", ["-Xshare:off"])):
        progress(f"hll-vm: class loading, {name}, {runs} run(s)")
        wall: list[float] = []
        text = ""
        for _ in range(runs):
            args = [*flags, "-Xlog:class+load:stderr", "-cp", str(wl.classpath), "HotLoop", "1", "1"]
            t0 = time.perf_counter()
            run = run_java(args)
            wall.append((time.perf_counter() - t0) * 1000)
            text = run.stderr
        loads = parse_class_load(text)
        if not loads:
            raise UnexpectedJvmOutput("-Xlog:class+load printed no line in the known format")
        origins = Counter(ld.origin for ld in loads)
        main_at = next((ld.uptime_s for ld in loads if ld.name == "HotLoop"), None)
        logs[f"classload-{name}.txt"] = text
        out[name] = Experiment(
            unit="ms",
            samples=wall,
            summary=summarize(wall),
            provenance=_provenance(
                [
                    "samples: wall time of the whole `java` process (start-up dominated), class+load logged",
                    "counts by source: cds = mapped from the shared archive, jrt = parsed from the modules",
                ]
            ),
            provider="vmlab.hllvm",
            counts={"loaded": len(loads), **{k: origins.get(k, 0) for k in ("cds", "jrt", "file", "other")}},
            values={"flags": " ".join(flags), "main_class_loaded_at_s": main_at},
        )
    return Measured(out, logs)


def sanitize_key(name: str) -> str:
    """A report key without dots (check paths are dotted): `Foo.Bar` -> `Foo_Bar`."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "_"


__all__ = [
    "MODES",
    "MORPHISM",
    "Measured",
    "class_loading",
    "gc_pauses",
    "inline_caches",
    "jit_events",
    "jit_modes",
    "sanitize_key",
]
