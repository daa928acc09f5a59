"""Step runners for labs/hll-vm: the JVM's tiers, JIT events, inline caches, GC, class loading, the
verifier (hand-made class files and the student's Jasmin), and CPython's adaptive interpreter.

Experiment ids are fixed (not the step id), so lab.toml's checks name stable paths. Keys below them are
dot-free (class names, modes, function names), because check paths are dotted.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from vmlab.errors import UsageError
from vmlab.hllvm.jvm import AssembleFailed, Workloads, compile_workloads
from vmlab.hllvm.measure import Measured, sanitize_key
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment, ExperimentEntry, Provenance

Mode = Literal["interpreter", "c1", "c2", "tiered"]


def _all_modes() -> list[Mode]:
    return ["interpreter", "c1", "c2", "tiered"]


def _workloads(ctx: StepContext) -> Workloads:
    wl = compile_workloads(ctx.lab_dir / "java")
    ctx.progress(f"hll-vm: workloads {'cached' if wl.cached else 'compiled'} (javac {wl.javac_version})")
    return wl


def _attach_logs(ctx: StepContext, measured: Measured) -> None:
    for name, text in measured.logs.items():
        ctx.attach_text(name, text)


class _WarmedUp(StepParams):
    """Repeats of which the first `warmup` are dropped: at least one must remain."""

    iters: int = Field(1_000_000, ge=1000, le=100_000_000)
    repeats: int = Field(12, ge=2, le=200)
    warmup: int = Field(4, ge=0, le=100)

    @model_validator(mode="after")
    def _one_left(self) -> _WarmedUp:
        if self.warmup >= self.repeats:
            raise ValueError(f"warmup ({self.warmup}) must be below repeats ({self.repeats})")
        return self


class JitModesParams(_WarmedUp):
    modes: list[Mode] = Field(default_factory=_all_modes, min_length=1)


def jit_modes(params: JitModesParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `jit-modes`: ns per iteration of HotLoop with -Xint, C1 only, C2 only and tiered."""
    from vmlab.hllvm import measure

    m = measure.jit_modes(
        _workloads(ctx),
        iters=params.iters,
        repeats=params.repeats,
        warmup=params.warmup,
        modes=list(params.modes),
        progress=ctx.progress,
    )
    _attach_logs(ctx, m)
    return {"jit-modes": dict(m.experiments)}


class JitEventsParams(StepParams):
    iters: int = Field(1_000_000, ge=1000, le=100_000_000)
    repeats: int = Field(6, ge=1, le=200)


def jit_events(params: JitEventsParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `jit-events`: PrintCompilation records of the hot loop, PrintFlagsFinal thresholds."""
    from vmlab.hllvm import measure

    m = measure.jit_events(_workloads(ctx), iters=params.iters, repeats=params.repeats, progress=ctx.progress)
    _attach_logs(ctx, m)
    return {"jit-events": m.experiments["events"], "jit-thresholds": m.experiments["thresholds"]}


class InlineCachesParams(_WarmedUp):
    iters: int = Field(2_000_000, ge=1000, le=100_000_000)
    repeats: int = Field(10, ge=2, le=200)


def inline_caches(params: InlineCachesParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `inline-caches`: ns per call at a mono-, bi- and megamorphic call site, and PrintInlining."""
    from vmlab.hllvm import measure

    m = measure.inline_caches(
        _workloads(ctx),
        iters=params.iters,
        repeats=params.repeats,
        warmup=params.warmup,
        progress=ctx.progress,
    )
    _attach_logs(ctx, m)
    return {"inline-caches": dict(m.experiments)}


class GcParams(StepParams):
    iters: int = Field(3_000_000, ge=1000, le=100_000_000)
    repeats: int = Field(4, ge=1, le=100)
    heap_mb: int = Field(64, ge=16, le=4096)
    collector: Literal["G1", "Serial", "Parallel"] = "G1"


def gc(params: GcParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `gc`: the allocation loop's pauses from -Xlog:gc."""
    from vmlab.hllvm import measure

    m = measure.gc_pauses(
        _workloads(ctx),
        iters=params.iters,
        repeats=params.repeats,
        heap_mb=params.heap_mb,
        collector=params.collector,
        progress=ctx.progress,
    )
    _attach_logs(ctx, m)
    return {"gc": m.experiments["pauses"]}


class ClassLoadingParams(StepParams):
    runs: int = Field(3, ge=1, le=50)


def class_loading(params: ClassLoadingParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `class-loading`: classes loaded (and start-up time) with and without the CDS archive."""
    from vmlab.hllvm import measure

    m = measure.class_loading(_workloads(ctx), runs=params.runs, progress=ctx.progress)
    _attach_logs(ctx, m)
    return {"class-loading": dict(m.experiments)}


def _verdict_experiment(v_dict: dict[str, object], notes: list[str]) -> Experiment:
    status = str(v_dict["status"])
    message = str(v_dict.get("message") or "")
    reason = str(v_dict.get("reason") or "")
    text = status if status == "accepted" else f"{status}: {message}" + (f" ({reason})" if reason else "")
    values: dict[str, float | int | str | bool | None] = {}
    for k in (
        "status",
        "class_name",
        "error",
        "message",
        "reason",
        "major",
        "expect",
        "expect_met",
        "stdout",
    ):
        v = v_dict.get(k)
        values[k] = v if isinstance(v, str | int | bool) or v is None else str(v)
    return Experiment(
        unit="verdict",
        provenance=Provenance(backend="hotspot", counter_source="java launcher stderr", notes=notes),
        provider="vmlab.hllvm",
        values=values,
        text=text,
    )


class VerifierParams(StepParams):
    javap: bool = True


def verifier(params: VerifierParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `verifier`: classes written byte by byte in Python, one valid and several broken, run."""
    from vmlab.hllvm.classfile import builtin_classes
    from vmlab.hllvm.verify import run_class

    out_dir = ctx.scratch / "verifier"
    out_dir.mkdir(parents=True, exist_ok=True)
    group: dict[str, Experiment] = {}
    javap = shutil.which("javap") if params.javap else None
    for c in builtin_classes():
        path = out_dir / f"{c.name}.class"
        path.write_bytes(c.data)
        ctx.attach(path)
        if javap:
            p = subprocess.run(
                [javap, "-c", "-v", str(path)], capture_output=True, text=True, timeout=60, check=False
            )
            ctx.attach_text(f"{c.name}.javap.txt", p.stdout + p.stderr)
        ctx.progress(f"hll-vm: verifying {c.name} (class-file version {c.major})")
        verdict = run_class(path, expect=c.expect)
        group[sanitize_key(c.name)] = _verdict_experiment(
            verdict.as_dict(), [c.why, f"class-file major version {c.major}; expected: {c.expect}"]
        )
    return {"verifier": group}


class JasminParams(StepParams):
    pattern: str = "*.j"


def jasmin(params: JasminParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `jasmin`: assemble every .j of the student's folder, run each class, record the verdicts."""
    from vmlab.hllvm.verify import assemble, expectation, run_class

    src = ctx.inputs.get("jasmin") or ctx.lab_dir / "jasmin"
    files = [src] if src.is_file() else sorted(src.glob(params.pattern))
    if not files:
        raise UsageError(f"no {params.pattern} files in the jasmin input", hint="--input jasmin=DIR")
    group: dict[str, Experiment] = {}
    tally = {"files": len(files), "accepted": 0, "rejected": 0, "assembly_errors": 0}
    tally.update({"expectations_met": 0, "expectations_failed": 0, "no_expectation": 0})
    tally["copied_examples"] = 0
    examples = {_shape(p.read_text(errors="replace")) for p in (ctx.lab_dir / "jasmin").glob("*.j")}
    for f in files:
        key = sanitize_key(f.stem)
        out_dir = ctx.scratch / "jasmin" / key
        ctx.progress(f"hll-vm: jasmin {f.name}")
        text = f.read_text(errors="replace")
        expect = expectation(text)
        copied = _shape(text) in examples  # counts for nothing: the task asks for classes of one's own
        tally["copied_examples"] += copied
        try:
            classes = assemble(f, out_dir)
        except AssembleFailed as e:
            tally["assembly_errors"] += 1
            group[key] = Experiment(
                unit="verdict",
                provider="vmlab.hllvm",
                values={"status": "assembly-error", "message": e.message, "expect": expect},
                text=f"assembly-error: {e.message}",
            )
            continue
        for i, cls in enumerate(classes):
            ctx.attach(cls, name=f"{key}-{cls.name}" if len(classes) > 1 else None)
            verdict = run_class(cls, source=f.name, expect=expect)
            if not copied:
                tally[verdict.status] += 1
            met = verdict.expect_met
            tally[
                "no_expectation" if met is None else "expectations_met" if met else "expectations_failed"
            ] += 1
            sub = key if i == 0 else sanitize_key(f"{f.stem}-{verdict.class_name}")
            group[sub] = _verdict_experiment(
                verdict.as_dict(), [f"{f.name}, class-file major version {verdict.major}"]
            )
    summary = Experiment(
        unit="count",
        provenance=Provenance(backend="hotspot", counter_source="jasmin + java launcher"),
        provider="vmlab.hllvm",
        counts=tally,
        values={"source": _display(src)},
    )
    return {"jasmin": group, "jasmin-summary": summary}


def _shape(text: str) -> str:
    """A Jasmin file without its comments, layout and class name: a renamed copy of one of the lab's
    examples (labs/hll-vm/jasmin/) has the example's shape."""
    lines = []
    for line in text.splitlines():
        words = line.split(";", 1)[0].split()
        if words[:1] == [".class"]:
            words = words[:-1]
        if words:
            lines.append(" ".join(words))
    return "\n".join(lines)


def _display(path: Path) -> str:
    """A relative name for the report (never an absolute path of the student's machine)."""
    return path.name


class PyspecParams(StepParams):
    warmup: int = Field(20, ge=1, le=10_000)
    n: int = Field(100, ge=1, le=1_000_000)
    count_n: int = Field(10, ge=1, le=10_000)
    depth: int = Field(18, ge=5, le=27)
    repeats: int = Field(7, ge=1, le=100)


def pyspec(params: PyspecParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step `pyspec`: adaptive specialisation, executed-opcode counts and tracing cost in a child CPython."""
    import json

    from vmlab.hllvm import pyspec as ps

    ctx.progress("hll-vm: CPython specialisation and tracing cost (child interpreter)")
    result = ps.run_child(
        warmup=params.warmup, n=params.n, count_n=params.count_n, depth=params.depth, repeats=params.repeats
    )
    ctx.attach_text("pyspec.json", json.dumps(result, indent=2))
    spec, tracing = ps.experiments(result)
    return {"pyspec": dict(spec), "py-tracing": dict(tracing)}
