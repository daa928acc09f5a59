"""`vmlab compare`: the same tiny userspace as a container, a gVisor sandbox and a system VM, side by side.

Three experiments, each with raw samples: start-up (every readiness stage, N cold starts, plus a
native process as baseline), memory overhead (idle after ready, and after a workload touching K MiB),
and traps (whatever the runtime's counter provider counts: VM exits, translation blocks, system calls
the host or the sandbox's kernel handled). Each kind runs on a runtime from the registry
(vmlab.backends); nothing here knows which. The parameters are systemvm.params, the measurement loop
systemvm.measure, the report's experiments systemvm.assemble.
"""

from __future__ import annotations

from collections.abc import Callable

from vmlab.backends.capabilities import CapabilityMissing
from vmlab.errors import BackendError, NotAvailable, PartialFailure, VmlabError
from vmlab.labs.step import StepContext
from vmlab.report.model import Experiment, ExperimentEntry
from vmlab.systemvm import measure
from vmlab.systemvm.assemble import (
    memory_experiment,
    native_startup,
    skipped_kind,
    startup_experiment,
    traps_experiment,
)
from vmlab.systemvm.params import CompareParams

Progress = Callable[[str], None]


class PartialResults(PartialFailure):
    """A runtime failed mid-compare; `partial` holds what the kinds before it measured."""

    def __init__(self, cause: VmlabError, experiments: dict[str, ExperimentEntry]) -> None:
        super().__init__(cause.message, hint=cause.hint, partial=dict(experiments))
        self.exit_code = cause.exit_code if isinstance(cause, BackendError) else BackendError.exit_code


def run_compare(
    params: CompareParams,
    run_id: str,
    lab: str,
    progress: Progress = lambda _m: None,
    uri: str | None = None,
) -> dict[str, ExperimentEntry]:
    """Measure every kind and return the report's experiments (startup, memory, traps).

    A kind whose runtime this host lacks (NotAvailable when opened) is recorded as skipped with the
    reason; a runtime that fails mid-way raises PartialResults carrying the finished kinds.
    """
    ctx = params.run_context(uri)
    only = params.only
    groups: dict[str, dict[str, Experiment]] = {"startup": {}, "memory": {}, "traps": {}}
    if "startup" in only:
        groups["startup"]["native"] = native_startup(max(params.runs, 5))
    for kind in params.kinds:
        try:
            res = measure.measure_kind(kind, params, ctx, run_id, lab, progress)
        except NotAvailable as e:
            if isinstance(e, CapabilityMissing):
                raise
            progress(f"{kind}: skipped: {e.one_line()}")
            groups["startup" if "startup" in only else only[0]][kind] = skipped_kind(kind, e)
            continue
        except VmlabError as e:
            raise PartialResults(e, _assembled(groups)) from e
        accel = res.samples[0].accel or None
        if "startup" in only:
            groups["startup"][kind] = startup_experiment(res.samples, res.runtime)
        if "memory" in only:
            groups["memory"][kind] = memory_experiment(kind, res.memory, res.runtime, accel)
        if "traps" in only:
            groups["traps"][kind] = traps_experiment(res.traps, res.runtime, accel, progress)
    return _assembled(groups)


def _assembled(groups: dict[str, dict[str, Experiment]]) -> dict[str, ExperimentEntry]:
    return {key: dict(group) for key, group in groups.items() if group}


def lab_step(params: CompareParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
    """Step runner of the compare step (and `vmlab compare`); `-c URI` arrives as ctx.run.uri.

    When a runtime fails mid-way, what the finished kinds measured travels on the error
    (PartialResults) and the pipeline keeps it in the report beside the step's error.
    """
    uri = ctx.run.uri
    result = run_compare(params, ctx.run_id, ctx.lab, ctx.progress, uri=uri)
    for group in result.values():
        vm = group.get("vm") if isinstance(group, dict) else None
        if vm is not None and vm.provenance.accel:
            ctx.use_accel(vm.provenance.accel, vm.provenance.accel_reason or "")
            break
    return result
