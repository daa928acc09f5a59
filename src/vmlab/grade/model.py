"""The class result: what `class.json` holds and every other output (CSV, JUnit, Gradescope, site) is
written from, so a merge of shards or a regrade preview needs nothing but these files."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vmlab.report.model import CheckResult, Timing

CLASS_FORMAT = "vmlab-class/2"
RERUN = "rerun"  # CheckResult.kind of a re-run check
CLAIM = "rerun-claim"  # a re-run check of something the report claims: failing it zeroes the score

# graded: no flag, the score is published; review: flagged and held until the tutor decides;
# flagged: flagged, published under --on-flag zero|keep; decided: a tutor's decision is applied;
# invalid: cannot be graded at all (no score, no Gradescope file)
Status = Literal["graded", "review", "flagged", "decided", "invalid"]
STATUSES: tuple[Status, ...] = ("graded", "review", "flagged", "decided", "invalid")
OnFlag = Literal["review", "zero", "keep"]
HeldOutput = Literal["zero", "none"]
Action = Literal["accept", "zero", "points"]
NearCopies = Literal["all", "samples", "none"]  # what near-copy detection compares
SignatureState = Literal["valid", "invalid", "absent", "not_checked"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Flag(_Strict):
    """Why a tutor should look at a hand-in. `blocking`: it cannot be graded at all."""

    code: str
    message: str
    blocking: bool = False


class Decision(_Strict):
    """A tutor's decision on one hand-in (decisions.toml), applied on every later `vmlab grade`.

    `report_sha256` pins it to the report the tutor looked at: a hand-in changed since is held again.
    """

    action: Action
    points: float | None = Field(None, ge=0)
    reason: str = Field(min_length=1)
    report_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


WrittenState = Literal["pending", "graded", "failed"]


class Written(_Strict):
    """A written answer (a text question) and the tutor's rubric points for it (vmlab.grade.rubric).

    `state`: `pending` present and long enough, waiting for the tutor's points; `graded` the rubric
    gave `points`; `failed` missing or too short (or its record broken): 0 unless the rubric row says
    `override`. `max_points` is the lab's, never the rubric's. `presence` is what the automatic check
    said, kept so a later grading with another rubric starts from it again.
    """

    answer: str = ""
    max_points: float = 0.0
    presence: str = ""
    state: WrittenState = "pending"
    points: float | None = None
    comment: str = ""
    override: bool = False  # graded although the answer did not pass (the rubric row said so)


class Fingerprint(_Strict):
    """What two hand-ins must never share; compared across the whole class (also after a merge)."""

    run_id: str | None = None
    submission: str | None = None
    samples: list[str] = Field(default_factory=list)
    # when the run and each step started and finished, to the microsecond: a copy keeps them
    timestamps: list[str] = Field(default_factory=list)
    # the gaps between those times, to the microsecond: a copy with every time shifted keeps them
    spacing: str | None = None


class Measure(_Strict):
    value: float
    unit: str = ""


class StudentResult(_Strict):
    """One hand-in's verdict. `student` comes from where the hand-in was found (or the roster), never
    from the report; `handin` is unique in the class and keys every output file. `score` is what is
    published (None while held or invalid); `computed_score` is what the checks give."""

    student: str
    handin: str = ""
    claimed_student: str | None = None
    source: str
    lab: str | None = None
    run_id: str | None = None
    schema_version: int | None = None
    status: Status
    score: float | None = None
    computed_score: float | None = None
    max_score: float | None = None
    report_sha256: str | None = None
    decision: Decision | None = None
    exit_code: int | None = None
    accel: str | None = None
    signature: SignatureState = "not_checked"
    flags: list[Flag] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    fingerprint: Fingerprint = Field(default_factory=Fingerprint)
    measures: dict[str, Measure] = Field(default_factory=dict)
    report_path: str | None = None
    written: dict[str, Written] = Field(default_factory=dict)  # text question id -> answer, rubric

    @property
    def rubric_pending(self) -> int:
        """Written answers that wait for the tutor's points (present and long enough, no rubric row)."""
        return sum(1 for w in self.written.values() if w.state == "pending")

    @property
    def rubric_points(self) -> float:
        return sum(w.points or 0.0 for w in self.written.values() if w.state == "graded")

    @property
    def percent(self) -> float | None:
        if self.score is None or not self.max_score:
            return None
        return 100.0 * self.score / self.max_score


class ClassOptions(_Strict):
    timing: Timing = "graded"
    rerun: bool = False
    require_signature: bool = False
    tasks: list[str] = Field(default_factory=list)  # empty: every task of the lab
    on_flag: OnFlag = "review"
    held_output: HeldOutput = "zero"
    roster: bool = False
    near_copies: NearCopies = "all"
    term: str | None = None  # the term per-student variants are derived for; None: VMLAB_TERM or the lab's


class ClassResult(_Strict):
    # 2: identity from the hand-in, held scores (score None under review), decisions; 1 is still read
    format: Literal["vmlab-class/1", "vmlab-class/2"] = "vmlab-class/2"
    lab: str
    lab_sha256: str
    vmlab_version: str
    graded_at: dt.datetime
    shard: str | None = None
    options: ClassOptions = Field(default_factory=ClassOptions)
    seconds: float | None = None
    students: list[StudentResult] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)  # roster students with no hand-in
    unused_decisions: list[str] = Field(default_factory=list)  # decisions naming no hand-in
    # rubric rows not applied: naming no hand-in, or points for a missing or too short answer
    unused_rubric: list[str] = Field(default_factory=list)
