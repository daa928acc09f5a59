"""What a lab step sees: its typed parameters and its context.

A step runner is a plain function named "module:function" in lab.toml:

    class StartupParams(StepParams):
        argv: list[str]
        runs: int = Field(10, ge=1)

    def startup(params: StartupParams, ctx: StepContext) -> dict[str, ExperimentEntry]:
        ...

The pipeline reads the parameter model from the annotation of the first argument, validates lab.toml's
`params` merged with the user's `--set STEP.KEY=VALUE` against it before any step runs (an unknown key or
a wrong type is a usage error naming the valid keys), and records the effective values in the report.
What the runner returns is merged into report.experiments; files it hands to `ctx.attach` are copied into
the report's `artifacts/` folder and listed with their sha256.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from vmlab.backends.context import RunContext
from vmlab.report.model import Artifact
from vmlab.spec.digest import sha256_file

log = logging.getLogger("vmlab")


class StepParams(BaseModel):
    """Base of every step's parameter model: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class NoParams(StepParams):
    """For steps that take no parameters."""


@dataclass
class StepContext:
    """What a step may know about the run it belongs to.

    `lab_dir` is the lab's folder (where its lab.toml is: labs/catalog.py found it, whichever root of
    VMLAB_LABS holds it), the one way a step reaches its lab's data files; `scratch` is a per-run
    directory for working files (readable by libvirt's QEMU user as root); `artifacts_dir` sits beside
    the report; `inputs` maps the step's declared input names to the recorded copies of the student's
    files (absent inputs are not in the map); `run` holds the run-wide choices that are no step's
    parameter (the libvirt URI of `-c`, runtimes, accelerator), typed.
    """

    run_id: str
    lab: str
    step_id: str
    scratch: Path
    artifacts_dir: Path
    report_dir: Path
    lab_dir: Path
    inputs: dict[str, Path] = field(default_factory=dict)
    run: RunContext = field(default_factory=RunContext)
    progress: Callable[[str], None] = log.info
    artifacts: list[Artifact] = field(default_factory=list)
    accel: tuple[str, str] | None = None

    def attach(self, path: Path, name: str | None = None) -> Artifact:
        """Copy a file into artifacts/<step>/ and list it in the report (name, relative path, sha256)."""
        dest_dir = self.artifacts_dir / self.step_id
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / (name or path.name)
        if path.resolve() != dest.resolve():
            shutil.copyfile(path, dest)
        return self._record(dest)

    def attach_text(self, name: str, text: str) -> Artifact:
        """Write `text` as artifacts/<step>/<name> and list it."""
        dest_dir = self.artifacts_dir / self.step_id
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / name
        dest.write_text(text)
        return self._record(dest)

    def use_accel(self, accel: str, reason: str) -> None:
        """Say which accelerator this step's guests really ran on; the report's host.accel follows it."""
        self.accel = (accel, reason)

    def _record(self, dest: Path) -> Artifact:
        art = Artifact(
            name=dest.name,
            step=self.step_id,
            path=dest.relative_to(self.report_dir).as_posix(),
            size=dest.stat().st_size,
            sha256=sha256_file(dest),
        )
        self.artifacts = [a for a in self.artifacts if a.path != art.path] + [art]
        return art
