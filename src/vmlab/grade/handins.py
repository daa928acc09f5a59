"""Finding hand-ins and reading them without trusting them.

A hand-in is one report with its `artifacts/` folder beside it. On the command line it is a report file,
a folder holding `report.json`, or a folder of such folders or of `*.json` reports. The student id comes
from the hand-in, never from the report: the folder name (for `report.json`) or the file name, mapped
through the roster when there is one. The report's own `run.student` is only a claim, compared with it
(flag `identity`). Every hand-in gets a key unique in the class (`key`), which names its output files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vmlab.errors import UsageError
from vmlab.grade.model import Fingerprint, Measure
from vmlab.grade.roster import Roster
from vmlab.report.model import SCHEMA_VERSION, Report

REPORT_NAME = "report.json"
SIGNATURE_KEY = "signature"  # a top-level block outside the signed content


@dataclass
class HandIn:
    """One hand-in as found: its path and the id its location gives; `loaded` fills the rest."""

    path: Path
    name_id: str
    shown: str
    raw: dict[str, Any] | None = None
    report: Report | None = None
    problem: str | None = None
    schema_version: int | None = None
    student: str = ""  # set by `discover`: the roster's id for name_id, else name_id
    key: str = ""  # unique in the class: name_id, with -2, -3 ... when two hand-ins share one
    sha256: str | None = None  # of the report file as read

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def claimed_student(self) -> str | None:
        """The student the report itself names (run.student), if any: a claim, never the identity."""
        if self.report is not None:
            return self.report.run.student or None
        raw_run = (self.raw or {}).get("run")
        if isinstance(raw_run, dict) and isinstance(raw_run.get("student"), str) and raw_run["student"]:
            return str(raw_run["student"])
        return None


def _id_of(report: Path) -> str:
    return report.parent.name if report.name == REPORT_NAME else report.stem


def discover(args: list[Path], roster: Roster | None = None) -> list[HandIn]:
    """Every hand-in under the given paths, sorted by where it was found; a missing path is an error.

    Each gets its student id (through the roster when given) and a key unique in the class."""
    found: dict[Path, HandIn] = {}

    def add(report: Path) -> None:
        key = report.resolve()
        if key not in found:
            found[key] = HandIn(path=report, name_id=_id_of(report), shown=str(report))

    for arg in args:
        if arg.is_file():
            add(arg)
        elif arg.is_dir():
            if (arg / REPORT_NAME).is_file():
                add(arg / REPORT_NAME)
                continue
            for child in sorted(arg.iterdir()):
                if child.is_dir() and (child / REPORT_NAME).is_file():
                    add(child / REPORT_NAME)
                elif child.is_file() and child.suffix == ".json":
                    add(child)
        else:
            raise UsageError(f"hand-in {arg} does not exist", hint="pass report files or folders of them")
    if not found:
        raise UsageError(
            f"no reports found under {', '.join(map(str, args))}",
            hint="hand-ins are report.json files, each with its artifacts/ folder beside it",
        )
    hand_ins = sorted(found.values(), key=lambda h: (h.name_id, h.shown))
    used: dict[str, int] = {}
    for h in hand_ins:
        h.student = (roster.id_of(h.name_id) if roster else None) or h.name_id
        n = used[h.name_id] = used.get(h.name_id, 0) + 1
        h.key = h.name_id if n == 1 else f"{h.name_id}-{n}"
    return hand_ins


def load(h: HandIn) -> HandIn:
    """Read the JSON and validate it as a report; any problem is recorded, never raised."""
    from vmlab.report.io import upgrade_v1

    try:
        raw = h.path.read_bytes()
        h.sha256 = hashlib.sha256(raw).hexdigest()
        data = json.loads(raw)
    except (OSError, UnicodeDecodeError) as e:
        h.problem = f"cannot read {h.shown}: {e}"
        return h
    except json.JSONDecodeError as e:
        h.problem = f"not valid JSON (line {e.lineno}: {e.msg})"
        return h
    if not isinstance(data, dict):
        h.problem = "not a JSON object"
        return h
    h.raw = data
    version = data.get("schema_version")
    h.schema_version = version if isinstance(version, int) and not isinstance(version, bool) else None
    if h.schema_version is None or h.schema_version < 1:
        h.problem = f"unknown schema_version {version!r}"
        return h
    if h.schema_version > SCHEMA_VERSION:
        h.problem = f"schema_version {version} is newer than this vmlab reads ({SCHEMA_VERSION})"
        return h
    body = {k: v for k, v in data.items() if k != SIGNATURE_KEY}
    if h.schema_version == 1:
        body = upgrade_v1(body)
    try:
        h.report = Report.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        h.problem = f"invalid at {where}: {first['msg']}"
    return h


def fingerprint(report: Report, handed_out: frozenset[str] = frozenset()) -> Fingerprint:
    """Run id, the hash of the student's own inputs, and a short hash of every raw sample vector.

    Inputs whose sha256 is in `handed_out` (the lab's skeletons, unchanged) are left out: two students
    who both hand in the skeleton share code that every student got, which is no evidence. Only vectors
    of two or more timings that are not all equal count: two honest runs never produce the same
    timings, while a constant vector (a failed run's zeros) may repeat by chance.
    """
    student_inputs = sorted(
        (n, r.sha256)
        for n, r in report.inputs.items()
        if r.source == "student" and r.sha256 not in handed_out
    )
    submission = hashlib.sha256(json.dumps(student_inputs).encode()).hexdigest() if student_inputs else None
    vectors: set[str] = set()
    for _where, exp in report.each_experiment():
        series = [exp.samples, *(m.samples for m in exp.stages.values())]
        for s in series:
            if len(s) >= 2 and len(set(s)) > 1:
                vectors.add(hashlib.sha256(json.dumps(s).encode()).hexdigest()[:24])
    return Fingerprint(run_id=report.run_id, submission=submission, samples=sorted(vectors))


def measures(report: Report) -> dict[str, Measure]:
    """The median of every measured figure, by its path, for the class site's distributions."""
    out: dict[str, Measure] = {}
    for where, exp in report.each_experiment():
        if exp.summary is not None:
            out[where] = Measure(value=exp.summary.median, unit=exp.unit)
        for stage, m in exp.stages.items():
            out[f"{where}.stages.{stage}"] = Measure(value=m.summary.median, unit=m.unit)
    return out
