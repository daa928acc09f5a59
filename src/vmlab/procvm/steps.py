"""What the process-vm steps share: the provenance they record, a workload's argv (a lab workload, or
the student's `extra`), the logs they attach and the CPU times they compare."""

from __future__ import annotations

from collections.abc import Sequence

from vmlab.errors import UsageError
from vmlab.labs.step import StepContext
from vmlab.procvm.runs import Run
from vmlab.procvm.workloads import build, workload
from vmlab.report.model import Provenance

PROVIDER = "vmlab.procvm"
EXTRA = "extra"  # group key of the student's (or tutor's) extra workload


def provenance(counter: str, *notes: str) -> Provenance:
    return Provenance(backend="process-vm", accel="none", counter_source=counter, notes=list(notes))


def workload_argv(name: str, target: str, ctx: StepContext, args: Sequence[str] | None = None) -> list[str]:
    """argv of a workload (a lab workload by name, or `extra`: the step's `workload` input)."""
    if name == EXTRA:
        src = ctx.inputs.get("workload")
        if src is None:
            raise UsageError("the extra workload was not provided", hint="--input workload=FILE.c")
        return [str(build(EXTRA, target, source=src))]
    w = workload(name)
    return [str(build(name, target, lab_dir=ctx.lab_dir)), *(w.count_args if args is None else args)]


def check_names(names: Sequence[str], allowed: Sequence[str]) -> None:
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise UsageError(f"unknown {unknown} (known: {', '.join(allowed)})")


def attach_log(ctx: StepContext, run: Run, name: str) -> None:
    if run.log_path and run.log_path.exists():
        ctx.attach(run.log_path, name)


def cpu_seconds(runs: list[Run]) -> list[float]:
    return [r.cpu_s for r in runs]
