"""A task step with no engine of the student's fails closed: vmlab's reference engine never stands in
(a lab.toml whose input has no default, say an older copy under VMLAB_LABS)."""

from __future__ import annotations

from pathlib import Path

from vmlab.isa import lab
from vmlab.labs.catalog import lab_dir
from vmlab.labs.step import StepContext
from vmlab.report.model import Experiment


def _ctx(tmp_path: Path) -> StepContext:
    return StepContext(
        run_id="test",
        lab="isa-emulation",
        step_id="t3",
        scratch=tmp_path / "scratch",
        artifacts_dir=tmp_path / "artifacts",
        report_dir=tmp_path,
        lab_dir=lab_dir("isa-emulation"),
        inputs={},
        progress=lambda _m: None,
    )


def test_a_task_without_a_file_records_failed_runs_not_the_reference(tmp_path: Path) -> None:
    out = lab.task(lab.TaskParams(task="t3", scenarios=[1, 3]), _ctx(tmp_path))
    group = out["t3"]
    assert isinstance(group, dict) and sorted(group) == ["S1", "S3"]
    for exp in group.values():
        assert isinstance(exp, Experiment)
        assert exp.values["engine"] == "missing:t3"  # the `is-student` check's regex ^student: fails
        assert exp.values["matches_oracle"] is False
        assert str(exp.values["outcome"]).startswith("error: no engine of yours for task t3")
        assert not exp.samples  # nothing ran


def test_the_step_module_names_no_reference_engine() -> None:
    # the task steps cannot fall back on an answer, and the module imports none (a kit leaves them out)
    source = Path(lab.__file__).read_text()
    assert "vmlab.isa.engines" not in source
    assert not hasattr(lab, "TASK_REFERENCE")
