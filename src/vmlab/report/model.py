"""The report: pydantic models that are the single source of the JSON schema.

Schema changes bump SCHEMA_VERSION and add a line to MIGRATIONS so tutors' scripts know what moved.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
MIGRATIONS: dict[int, str] = {1: "first version"}


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
    """The host fingerprint stored with every figure."""

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


class CheckResult(_Strict):
    id: str
    kind: str
    task: str | None = None
    description: str = ""
    required: bool = True
    timing: bool = False
    passed: bool
    measured: Any = None
    expected: str = ""
    message: str = ""


class Report(_Strict):
    schema_version: Literal[1] = 1  # == SCHEMA_VERSION; a Literal so a wrong version fails validation
    vmlab_version: str
    lab: str
    run_id: str
    created_at: dt.datetime
    host: HostInfo
    params: dict[str, Any] = Field(default_factory=dict)
    experiments: dict[str, ExperimentEntry] = Field(default_factory=dict)
    checks: list[CheckResult] | None = None


def report_json_schema() -> dict[str, Any]:
    schema = Report.model_json_schema()
    schema["$id"] = f"https://vmlab.invalid/schemas/report-v{SCHEMA_VERSION}.json"
    schema["title"] = "vmlab report"
    return schema
