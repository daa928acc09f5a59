"""The report: pydantic models that are the single source of the JSON schema.

Schema changes bump SCHEMA_VERSION and add a line to MIGRATIONS so tutors' scripts know what moved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 2
MIGRATIONS: dict[int, str] = {
    1: "first version",
    2: "provenance (student, commit, lab.toml sha256, tools), steps with status and effective params, "
    "declared inputs and artifacts, check outcomes pass/fail/skipped/error with points, run status",
}


# How a grade treats checks marked `timing` (wall-clock based): "graded" counts them like any other,
# "advisory" shows them but keeps them out of the verdict and the score. The grader's choice (vmlab
# check and vmlab grade --timing), recorded on every Grade.
Timing = Literal["graded", "advisory"]
TIMINGS: tuple[Timing, ...] = get_args(Timing)


def parse_timing(value: str) -> Timing:
    """A `--timing` value, or one usage error naming the choices."""
    from vmlab.errors import UsageError

    for t in TIMINGS:
        if value == t:
            return t
    raise UsageError(f"--timing {value!r}: use {' or '.join(TIMINGS)}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Summary(_Strict):
    n: int = Field(ge=1)
    median: float
    min: float
    max: float
    iqr: float = 0.0


class Measurement(_Strict):
    """One measured quantity: every raw sample and their summary."""

    unit: str
    samples: list[float]
    summary: Summary


class Provenance(_Strict):
    """Where the numbers came from, so a reader can judge them."""

    backend: str | None = None
    accel: str | None = None
    accel_reason: str | None = None
    counter_source: str | None = None
    notes: list[str] = Field(default_factory=list)


class Experiment(_Strict):
    """One experiment's result.

    `samples`/`summary` hold the headline figure; `stages` the per-stage figures of a ladder;
    `counts` exact integers (exits, instructions, translations); `values` other scalars;
    `text` output that regex checks read.
    """

    unit: str
    samples: list[float] = Field(default_factory=list)
    summary: Summary | None = None
    provenance: Provenance = Field(default_factory=Provenance)
    provider: str | None = None
    stages: dict[str, Measurement] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    values: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    text: str | None = None
    series: dict[str, list[float]] = Field(default_factory=dict)


# An experiment id maps to one experiment, or to a group keyed by variant (kind, engine, program).
ExperimentEntry = Experiment | dict[str, Experiment]


class HostInfo(_Strict):
    """The host fingerprint stored with every figure.

    `accel`/`accel_reason` are what the run's guests really used (set by the steps that started one;
    None when no step did), not what `auto` would pick on this host.
    """

    hostname: str
    kernel: str
    os: str
    arch: str
    cpu_model: str
    cpu_count: int
    memory_bytes: int
    python: str
    hw_virt: bool
    accel: str | None = None
    accel_reason: str | None = None
    versions: dict[str, str | None] = Field(default_factory=dict)


Outcome = Literal["pass", "fail", "skipped", "error"]


class CheckResult(_Strict):
    """One check's verdict.

    `skipped`: the step behind it did not run (a requirement unmet, the run interrupted) or its `when`
    condition is false (then `applicable` is false); `error`: not gradable (a grader or infrastructure
    fault, never the student's loss).
    """

    id: str
    kind: str
    task: str | None = None
    description: str = ""
    required: bool = True
    timing: bool = False
    outcome: Outcome
    applicable: bool = True
    points: float = 1.0
    score: float = 0.0
    measured: Any = None
    expected: str = ""
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


class Grade(_Strict):
    """The verdict over all checks; `exit_code` is what `vmlab check` exits with."""

    passed: bool
    exit_code: int
    score: float
    max_score: float
    counts: dict[str, int] = Field(default_factory=dict)
    timing: Timing = "graded"


class Artifact(_Strict):
    """A file kept with the report: `path` is relative to the report's folder."""

    name: str
    step: str
    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class InputRecord(_Strict):
    """A student's file or folder as it was used: by relative name, never an absolute path."""

    name: str
    kind: Literal["file", "dir"]
    source: Literal["student", "default"]
    size: int = Field(ge=0)
    files: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    artifact: str


StepStatus = Literal["ok", "error", "skipped", "interrupted", "not_run"]


class StepRecord(_Strict):
    """How one step went, with the parameters it really ran with."""

    status: StepStatus
    params: dict[str, Any] = Field(default_factory=dict)
    message: str = ""
    requires: list[str] = Field(default_factory=list)
    started_at: dt.datetime | None = None
    duration_s: float | None = None
    experiments: list[str] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)


class VariantRecord(_Strict):
    """The per-student parameters the run used (lab.toml `[variants]`), drawn for `student` in `term`:
    checks read them as `variant.NAME`; `vmlab check` and `vmlab grade` derive them again."""

    term: str = ""
    values: dict[str, int | float | str] = Field(default_factory=dict)


class RunInfo(_Strict):
    """Provenance of the run: who, with which vmlab, under which lab rules."""

    student: str | None = None
    vmlab_commit: str | None = None
    vmlab_dirty: bool | None = None
    lab_sha256: str = Field(pattern=r"^[0-9a-f]{64}$|^$")
    tasks: list[str] = Field(default_factory=list)
    status: Literal["complete", "partial", "interrupted"] = "complete"
    finished_at: dt.datetime | None = None
    variant: VariantRecord | None = None


class Signature(_Strict):
    """HMAC-SHA256 of the report's canonical JSON (signature, checks, grade left out), made by a runner.

    It proves the report left that runner unchanged; it says nothing about a run on a student's machine.
    """

    alg: Literal["hmac-sha256"]
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    value: str = Field(pattern=r"^[0-9a-f]{64}$")
    signed_at: dt.datetime | None = None


class SealedPredictions(_Strict):
    """What `vmlab lab predict` writes before a run: the numeric answers of the answers file (`sha256`)
    by question id, sealed at `sealed_at` (UTC). It dates the prediction by the student's own clock:
    evidence of the order of work, not proof (a tutor who needs proof collects the sealed file, or
    its sha256, before the lab session)."""

    lab: str
    sealed_at: dt.datetime
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    values: dict[str, float] = Field(default_factory=dict)


class Predictions(_Strict):
    """The student's own work as the run recorded it: every answer of the answers input (`sha256` is
    that input's) by question id, and the sealed predictions when the run was given them. Graded by
    vmlab.check.questions; a sealed block whose numbers differ from the answers, or sealed after the run
    started, fails the `answers` check."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    answers: dict[str, float | str] = Field(default_factory=dict)
    sealed: SealedPredictions | None = None


class Report(_Strict):
    """The envelope is strict; experiment payloads stay open to what each lab measures."""

    schema_version: Literal[2] = 2  # == SCHEMA_VERSION; a Literal so a wrong version fails validation
    vmlab_version: str
    lab: str
    run_id: str
    created_at: dt.datetime
    host: HostInfo
    run: RunInfo = Field(default_factory=lambda: RunInfo(lab_sha256=""))
    params: dict[str, Any] = Field(default_factory=dict)
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    inputs: dict[str, InputRecord] = Field(default_factory=dict)
    artifacts: list[Artifact] = Field(default_factory=list)
    experiments: dict[str, ExperimentEntry] = Field(default_factory=dict)
    predictions: Predictions | None = None
    checks: list[CheckResult] | None = None
    grade: Grade | None = None
    signature: Signature | None = None

    def each_experiment(self) -> Iterator[tuple[str, Experiment]]:
        """Every experiment with its dotted path: `id` alone, or `id.variant` inside a group."""
        for exp_id, entry in self.experiments.items():
            if isinstance(entry, Experiment):
                yield exp_id, entry
            else:
                for variant, exp in entry.items():
                    yield f"{exp_id}.{variant}", exp


def report_json_schema() -> dict[str, Any]:
    schema = Report.model_json_schema()
    schema["$id"] = f"https://vmlab.invalid/schemas/report-v{SCHEMA_VERSION}.json"
    schema["title"] = "vmlab report"
    return schema
