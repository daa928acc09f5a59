"""The class result: what `class.json` holds and every other output (CSV, JUnit, Gradescope, site) is
written from, so a merge of shards or a regrade preview needs nothing but these files."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vmlab.report.model import CheckResult

CLASS_FORMAT = "vmlab-class/1"
RERUN = "rerun"  # CheckResult.kind of a re-run check
CLAIM = "rerun-claim"  # a re-run check of something the report claims: failing it zeroes the score

Status = Literal["graded", "flagged", "invalid"]
SignatureState = Literal["valid", "invalid", "absent", "not_checked"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Flag(_Strict):
    """Why a tutor should look at a hand-in. `blocking`: it cannot be graded at all."""

    code: str
    message: str
    blocking: bool = False


class Fingerprint(_Strict):
    """What two hand-ins must never share; compared across the whole class (also after a merge)."""

    run_id: str | None = None
    submission: str | None = None
    samples: list[str] = Field(default_factory=list)


class Measure(_Strict):
    value: float
    unit: str = ""


class StudentResult(_Strict):
    student: str
    source: str
    lab: str | None = None
    run_id: str | None = None
    schema_version: int | None = None
    status: Status
    score: float | None = None
    max_score: float | None = None
    exit_code: int | None = None
    accel: str | None = None
    signature: SignatureState = "not_checked"
    flags: list[Flag] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    fingerprint: Fingerprint = Field(default_factory=Fingerprint)
    measures: dict[str, Measure] = Field(default_factory=dict)
    report_path: str | None = None

    @property
    def percent(self) -> float | None:
        if self.score is None or not self.max_score:
            return None
        return 100.0 * self.score / self.max_score


class ClassOptions(_Strict):
    timing: Literal["graded", "advisory"] = "graded"
    rerun: bool = False
    require_signature: bool = False


class ClassResult(_Strict):
    format: Literal["vmlab-class/1"] = "vmlab-class/1"
    lab: str
    lab_sha256: str
    vmlab_version: str
    graded_at: dt.datetime
    shard: str | None = None
    options: ClassOptions = Field(default_factory=ClassOptions)
    seconds: float | None = None
    students: list[StudentResult] = Field(default_factory=list)
