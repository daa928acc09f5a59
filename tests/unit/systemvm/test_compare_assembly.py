"""Assembly of compare's experiments from ladders and counters (no backend needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from vmlab.errors import UsageError
from vmlab.labs.catalog import lab_dir
from vmlab.report.model import Experiment, Report
from vmlab.systemvm.assemble import (
    Sample,
    _headline_counts,
    memory_experiment,
    startup_experiment,
)
from vmlab.systemvm.params import CompareParams, Workloads
from vmlab.systemvm.plots import write_plots
from vmlab.systemvm.views import compare_table


def ladder(*stages: tuple[str, float]) -> dict[str, float]:
    return {"create_called": 0.0, **dict(stages)}


def test_startup_experiment_keeps_every_stage_and_run() -> None:
    samples = [
        Sample(ladder(("created", 0.01), ("running", 0.2), ("first_exec", 0.3)), None, "", ""),
        Sample(ladder(("created", 0.03), ("running", 0.25), ("first_exec", 0.5)), None, "", ""),
        Sample(ladder(("created", 0.02), ("running", 0.22), ("first_exec", 0.4)), None, "", ""),
    ]
    exp = startup_experiment(samples, "docker")
    assert list(exp.stages) == ["create_called", "created", "running", "first_exec"]
    assert exp.stages["first_exec"].samples == [0.3, 0.5, 0.4]
    assert exp.summary is not None and exp.summary.median == 0.4 and exp.summary.n == 3
    assert exp.values["ready_stage"] == "first_exec"
    assert exp.values["harness_overhead_s"] == 0.02
    assert exp.values["harness_overhead_fraction"] == pytest.approx(0.05)


def test_guest_uptime_is_summarised() -> None:
    samples = [
        Sample(ladder(("serial_marker", 2.0)), 1.5, "tcg", "no vmx"),
        Sample(ladder(("serial_marker", 3.0)), 2.5, "tcg", "no vmx"),
    ]
    exp = startup_experiment(samples, "libvirt")
    assert exp.values["guest_uptime_at_marker_s"] == 2.0
    assert exp.provenance.accel == "tcg" and exp.provenance.accel_reason == "no vmx"


def test_headline_aliases() -> None:
    counts = {
        "before:tb_count": 10,
        "idle:tb_count": 1,
        "io:tb_count": 50,
        "after:tb_count": 61,
        "io:code_size_bytes": 9,
    }
    assert _headline_counts(counts, "tb_count") == {
        "headline:before": 10,
        "headline:idle": 1,
        "headline:io": 50,
        "headline:after": 61,
    }


def test_memory_experiment_summarises_idle_overhead() -> None:
    mem = {
        "idle": [{"overhead": 100, "workload_rss": 5}, {"overhead": 300, "workload_rss": 6}],
        "after": {"overhead": 310, "workload_rss": 40},
    }
    exp = memory_experiment("vm", mem, "libvirt", "tcg")
    assert exp.samples == [100.0, 300.0] and exp.summary is not None and exp.summary.median == 200.0
    assert exp.values["idle_workload_rss"] == 6 and exp.values["after_workload_rss"] == 40


@pytest.mark.parametrize(
    "bad",
    [
        {"runs": 0},
        {"only": ["startup", "bogus"]},
        {"only": []},
        {"accel": "xen"},
        {"kinds": ["vm", "jail"]},
        {"kinds": []},
        {"touch_mib": 0},
        {"idle_s": -1},
    ],
)
def test_bad_options(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CompareParams.model_validate(bad)


def test_the_kinds_are_the_registrys() -> None:
    """Compare's default kinds are the runtime registry's instance kinds, declared there once."""
    from vmlab.runtime_registry import INSTANCE_KINDS

    assert CompareParams().kinds == ["container", "sandbox", "vm"] == list(INSTANCE_KINDS)


def test_workload_sinks_differ_only_in_the_device() -> None:
    """The runtime names the sink; the command is the same everywhere."""
    from vmlab.backends.docker.backend import DockerInstance
    from vmlab.backends.docker.runsc import RunscInstance
    from vmlab.backends.libvirt.instance import LibvirtInstance

    w = Workloads()
    vm_cmd, vm_sink = w.io(LibvirtInstance.io_sink).rsplit("> ", 1)
    ct_cmd, ct_sink = w.io(DockerInstance.io_sink).rsplit("> ", 1)
    assert vm_cmd == ct_cmd and (vm_sink, ct_sink) == ("/dev/ttyS0", "/dev/null")
    assert RunscInstance.io_sink == "/dev/null"


def test_table_and_plots_from_a_report(tmp_path: Path, make_report: Callable[..., Report]) -> None:
    samples = [Sample(ladder(("created", 0.1), ("first_exec", 0.3)), None, "", "")]
    vm = [Sample(ladder(("created", 0.1), ("serial_marker", 2.0), ("first_command", 3.0)), 1.2, "tcg", "r")]
    traps = Experiment(
        unit="count",
        provider="p",
        counts={"idle:tb_count": 3, "io:tb_count": 9, "cpu:tb_count": 4},
        values={"headline_counter": "tb_count"},
    )
    mem = memory_experiment(
        "vm", {"idle": [{"overhead": 1 << 27, "workload_rss": 1 << 26}]}, "libvirt", "tcg"
    )
    report = make_report(
        {
            "startup": {
                "container": startup_experiment(samples, "docker"),
                "vm": startup_experiment(vm, "libvirt"),
            },
            "memory": {"vm": mem},
            "traps": {"vm": traps},
        },
        lab="system-vm",
    )
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(compare_table(report))
    text = console.export_text()
    assert "vm (tcg)" in text and "serial_marker" in text and "10.0×" in text
    made = write_plots(report, tmp_path)
    assert [p.name for p in made] == ["startup.png", "memory.png", "traps.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in made)


def test_lab_step_turns_toml_params_into_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """labs/system-vm passes lab.toml params (lists for tuples) and --set overrides to run_compare."""
    from vmlab.labs.plan import validate_params as _validate_params
    from vmlab.labs.step import StepContext
    from vmlab.systemvm import compare

    seen: list[CompareParams] = []

    def run(
        params: CompareParams, run_id: str, lab: str, progress: object, uri: str | None
    ) -> dict[str, object]:
        seen.append(params)
        return {}

    monkeypatch.setattr(compare, "run_compare", run)
    ctx = StepContext(
        run_id="r1",
        lab="system-vm",
        step_id="compare",
        scratch=tmp_path,
        artifacts_dir=tmp_path,
        report_dir=tmp_path,
        lab_dir=lab_dir("system-vm"),
    )
    params = _validate_params(
        "compare", compare.CompareParams, {"runs": 2, "only": ["startup"], "touch_mib": 8}
    )
    compare.lab_step(params, ctx)  # type: ignore[arg-type]
    assert seen[0].runs == 2 and seen[0].only == ["startup"] and seen[0].touch_mib == 8
    with pytest.raises(UsageError, match=r"rnus is not a parameter.*valid keys of compare: runs"):
        try:
            _validate_params("compare", compare.CompareParams, {"rnus": 3})
        except UsageError as e:
            raise UsageError(e.one_line()) from None


def test_memory_values_find_guest_ram_by_size_and_sum_runtime_processes() -> None:
    from vmlab.backends.capabilities import MIB, MapEntry, MemorySample, ProcessMemory
    from vmlab.systemvm.assemble import memory_values

    maps = (
        MapEntry("/usr/bin/qemu", 20 * MIB, 12 * MIB, 12 * MIB, 2 * MIB),
        MapEntry("", 256 * MIB, 100 * MIB, 100 * MIB, 100 * MIB),
        MapEntry("", 1024 * MIB, 52 * MIB, 52 * MIB, 52 * MIB),
    )
    vm = memory_values(
        MemorySample(
            (ProcessMemory("qemu", 1, 164 * MIB, 154 * MIB, None, maps),),
            "m",
            guest_ram_bytes=256 * MIB,
            code_cache=True,
        )
    )
    assert vm["workload_rss"] == 100 * MIB and vm["overhead"] == 64 * MIB
    assert vm["qemu_code_buffer_rss"] == 52 * MIB and vm["guest_memory_bytes"] == 256 * MIB
    sandbox = memory_values(
        MemorySample(
            (
                ProcessMemory("shim", 1, 10, 5),
                ProcessMemory("sentry", 2, 200, 150),
                ProcessMemory("gofer", 3, 20, 15),
            ),
            "m",
            workload_bytes=7,
            extra={"cgroup_usage": 7},
        )
    )
    assert sandbox["overhead"] == 230 and sandbox["workload_rss"] == 7
    assert (sandbox["sentry_rss"], sandbox["gofer_uss"], sandbox["cgroup_usage"]) == (200, 15, 7)


class _Counter:
    """A counter double: the phase loop's bookkeeping, not any runtime, is under test here."""

    def __init__(self, cumulative: bool) -> None:
        self.provider, self.headline, self.notes = "p", "total", ["n"]
        self.cumulative, self.seen, self.level = cumulative, [], 10

    def snapshot(self) -> dict[str, int] | None:
        return {"total": self.level} if self.cumulative else None

    def phase(self, name: str, command: str | None, idle_s: float) -> dict[str, int]:
        self.seen.append((name, command))
        got = {"idle": 0, "io": 7, "cpu": 3}[name]
        self.level += got
        return {"total": got, "write": got}

    def close(self) -> None:
        pass


@pytest.mark.parametrize("cumulative", [True, False])
def test_phases_before_after_and_headline(cumulative: bool) -> None:
    from vmlab.systemvm.measure import count_phases

    counter = _Counter(cumulative)
    got = count_phases(counter, "/dev/null", Workloads(), 0.0)
    assert [n for n, _ in counter.seen] == ["idle", "io", "cpu"]
    assert counter.seen[1][1] is not None and counter.seen[1][1].endswith("> /dev/null")
    before = 10 if cumulative else 0
    assert got["counts"]["before:total"] == before and got["counts"]["after:total"] == before + 10
    assert got["counts"]["io:write"] == 7 and got["provider"] == "p" and got["notes"] == ["n"]


def test_a_missing_capability_is_recorded_as_skipped() -> None:
    from vmlab.backends.base import InstanceBase
    from vmlab.systemvm.measure import memory_sample, traps_of

    class Bare(InstanceBase):
        runtime = "bare"

    inst = Bare("b", "vmlab-r-b")
    trp = traps_of(inst, Workloads(), 0.0)
    assert trp["provider"] is None and "offers no trap counter" in trp["skipped"]
    assert "offers no memory sample" in memory_sample(inst)["skipped"]


def test_partial_results_keep_finished_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runtime that fails mid-compare: the error carries what the kinds before it measured."""
    from vmlab.errors import BackendError
    from vmlab.systemvm import compare, measure

    def measure_kind(kind: str, *_a: object) -> measure.KindResult:
        if kind == "vm":
            raise BackendError("exec in vmlab-x failed: dockerd does not answer")
        res = measure.KindResult("docker")
        res.samples.append(Sample(ladder(("created", 0.1), ("first_exec", 0.2)), None, "none", ""))
        return res

    monkeypatch.setattr(measure, "measure_kind", measure_kind)
    params = CompareParams(runs=1, only=["startup"], kinds=["container", "vm"])
    with pytest.raises(compare.PartialResults) as info:
        compare.run_compare(params, "r1", "tests")
    assert info.value.exit_code == 4 and "dockerd" in info.value.message
    assert set(info.value.partial["startup"]) == {"native", "container"}  # type: ignore[arg-type]


def test_compare_without_docker_exits_3_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vmlab_home: Path
) -> None:
    """An unmet requirement is a missing capability (exit 3), not a backend fault (4); nothing is booted."""
    from typer.testing import CliRunner

    from vmlab.cli.main import app
    from vmlab.host import requirements

    gone = requirements.Unmet("docker", "daemon not reachable", "make setup (starts dockerd)")
    monkeypatch.setitem(requirements.REQUIREMENTS, "docker", lambda: gone)
    result = CliRunner().invoke(app, ["compare", "-n", "1", "-o", str(tmp_path / "r.json")])
    assert result.exit_code == 3, result.output
    assert "daemon not reachable" in result.stderr and "make setup" in result.stderr


def test_ctrl_c_re_raised_at_the_end_of_create_leaves_no_instance(
    monkeypatch: pytest.MonkeyPatch, vmlab_home: Path
) -> None:
    """A runtime defers Ctrl-C through create and re-raises it once the instance exists, before compare
    holds it: compare asks the backend to remove what it created (seen once, as a leftover container,
    in the lab's Ctrl-C test)."""
    from tests.unit.backends import fake_runtime

    from vmlab.systemvm.compare import run_compare

    created = fake_runtime.FakeBackend.create

    def create_then_interrupt(self: fake_runtime.FakeBackend, spec: Any) -> Any:
        created(self, spec)
        raise KeyboardInterrupt

    monkeypatch.setattr("vmlab.runtime_registry.RUNTIMES", {})
    monkeypatch.setattr(fake_runtime.FakeBackend, "create", create_then_interrupt)
    with fake_runtime.registered():
        params = CompareParams(runs=1, only=["memory"], kinds=["container"], runtimes=["fake"])
        with pytest.raises(KeyboardInterrupt):
            run_compare(params, "r9", "tests")
        assert fake_runtime.STORE == {}  # (leaving `registered` forgets every instance anyway)


def test_vmlab_compare_passes_on_only_the_options_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults have one home (lab.toml's params, then CompareParams): an option not given is not sent."""
    from typer.testing import CliRunner

    from vmlab.cli.main import app
    from vmlab.labs import pipeline

    seen: list[Any] = []

    def run_lab(request: Any, progress: Any = None) -> Any:
        seen.append(request)
        raise UsageError("stop here")

    monkeypatch.setattr(pipeline, "run_lab", run_lab)
    assert CliRunner().invoke(app, ["compare"]).exit_code == 2
    given = ["compare", "-n", "2", "--kinds", "vm, sandbox", "--only", "traps", "--runtime", "podman"]
    assert CliRunner().invoke(app, given).exit_code == 2
    assert [r.sets for r in seen] == [
        {"compare": {}},
        {"compare": {"runs": 2, "kinds": ["vm", "sandbox"], "only": ["traps"], "runtimes": ["podman"]}},
    ]
    assert {r.lab for r in seen} == {"system-vm"}
