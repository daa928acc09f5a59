"""Finding hand-ins and reading them without trusting them.

A hand-in is one report with its `artifacts/` folder beside it. On the command line it is a report file,
a folder holding `report.json`, or a folder of such folders or of `*.json` reports. The student id comes
from the hand-in, never from the report: the folder name (for `report.json`) or the file name, mapped
through the roster when there is one. The report's own `run.student` is only a claim, compared with it
(flag `identity`). Every hand-in gets a key unique in the class (`key`), which names its output files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
import os
import stat
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


# A class folder holds one entry per student; a course has hundreds. Past this the folder is not a
# class (a home directory, an unpacked tree): refuse it in one line rather than stat every entry.
MAX_FOLDER_ENTRIES = 10_000
ARTIFACTS_NAME = "artifacts"


def _listing(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of one folder, sorted by name; only this folder, never what lies below it."""
    entries: list[os.DirEntry[str]] = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                entries.append(entry)
                if len(entries) > MAX_FOLDER_ENTRIES:
                    raise UsageError(
                        f"hand-in folder {folder} holds more than {MAX_FOLDER_ENTRIES} entries "
                        f"(limit {MAX_FOLDER_ENTRIES}): not a class of hand-ins",
                        hint="pass the folders of the hand-ins themselves, or split the class into folders",
                    )
    except OSError as e:
        raise UsageError(f"cannot list hand-in folder {folder}: {e.strerror}") from None
    return sorted(entries, key=lambda e: e.name)


def _escapes(path: Path, folder: Path) -> str | None:
    """Where `path` leads when it is a symlink out of `folder` (resolved), else None."""
    if not path.is_symlink():
        return None
    target = path.resolve()
    return None if target.is_relative_to(folder.resolve()) else str(target)


def _problem(report: Path, shown: str, folder: Path, *, named: bool) -> str | None:
    """Why a hand-in cannot be read, found without reading it: a symlink out of its hand-in folder
    (the report, unless the tutor named that file, or its artifacts/), or no regular file there."""
    if not named and (target := _escapes(report, folder)) is not None:
        return f"{shown} is a symlink to {target}, outside its hand-in folder {folder}: not read"
    artifacts = report.parent / ARTIFACTS_NAME
    if (target := _escapes(artifacts, report.parent)) is not None:
        return f"{artifacts} is a symlink to {target}, outside its hand-in folder {report.parent}: not read"
    try:
        mode = report.stat().st_mode
    except FileNotFoundError:
        if report.is_symlink():
            return f"{shown} is a symlink to {os.readlink(report)}, which does not exist"
        return f"{shown} does not exist"
    except OSError as e:
        return f"cannot read {shown}: {e.strerror}"
    if stat.S_ISDIR(mode):
        return f"{shown} is a folder, not a report file"
    if not stat.S_ISREG(mode):
        return f"{shown} is not a regular file (a FIFO, socket or device): not read"
    return None


def discover(args: list[Path], roster: Roster | None = None) -> list[HandIn]:
    """Every hand-in under the given paths, sorted by where it was found; a missing path is an error.

    Only the named folders and their direct sub-folders are listed (a bounded listing, never a walk).
    A hand-in whose report or artifacts/ is a symlink out of its folder, or whose report is no regular
    file, is kept with its `problem` (graded as unreadable), never followed nor read.
    Each gets its student id (through the roster when given) and a key unique in the class."""
    found: dict[Path, HandIn] = {}

    def add(report: Path, folder: Path, *, named: bool = False) -> None:
        key = report.parent.resolve() / report.name  # the final link is not followed: never merges two
        if key not in found:
            shown = str(report)
            found[key] = HandIn(
                path=report,
                name_id=_id_of(report),
                shown=shown,
                problem=_problem(report, shown, folder, named=named),
            )

    for arg in args:
        if arg.is_dir():
            if os.path.lexists(arg / REPORT_NAME):
                add(arg / REPORT_NAME, arg)
                continue
            for entry in _listing(arg):
                child = arg / entry.name
                if entry.is_dir():
                    if os.path.lexists(child / REPORT_NAME):
                        add(child / REPORT_NAME, child)
                elif child.suffix == ".json":
                    add(child, arg)
        elif os.path.lexists(arg):  # a file, or a FIFO or dangling symlink the tutor named: one problem
            add(arg, arg.parent, named=True)
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
    """Read the JSON (bounded in size and nesting) and validate it as a report; any problem is
    recorded as one line, never raised. A problem `discover` found is kept and nothing is read."""
    from vmlab.errors import ReportError
    from vmlab.report.io import parse_json, read_bounded, upgrade_v1

    if h.problem is not None:
        return h
    try:
        raw = read_bounded(h.path, "report", shown=h.shown)
        h.sha256 = hashlib.sha256(raw).hexdigest()
        data = parse_json(raw, "report", h.shown)
    except ReportError as e:
        h.problem = e.message
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
    who both hand in the skeleton share code that every student got, which is no evidence. Timestamps
    are kept to the microsecond: two honest runs never start in the same one. Only vectors
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
    stamps = [report.created_at, report.run.finished_at]
    stamps += [s.started_at for s in report.steps.values()]
    timestamps = sorted({t.isoformat() for t in stamps if t is not None})
    return Fingerprint(
        run_id=report.run_id,
        submission=submission,
        samples=sorted(vectors),
        timestamps=timestamps,
        spacing=_spacing(stamps),
    )


# A gap of real work g varies between honest runs by at least ~1 % of g (the tightest kvm-api timings
# here: 0.4 %), so two runs agree on it to the microsecond at most 1 time in 0.01 * g / 1 us. The
# gaps together must make that 1 in 10^8 (as PAIR_EVIDENCE in nearcopy.samples): a run of tenths of
# a second per step passes easily, a run of instant steps never.
SPACING_EVIDENCE = 8.0


def _spacing(stamps: list[dt.datetime | None]) -> str | None:
    """A short hash of the gaps between a run's distinct times, in microseconds, when they are long
    enough to tell (SPACING_EVIDENCE): each gap is a duration of real work, so two honest runs do not
    match them all, while a copy whose every time was shifted by one amount keeps them."""
    utc = sorted({t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in stamps if t is not None})
    steps = [(b - a) // dt.timedelta(microseconds=1) for a, b in itertools.pairwise(utc)]
    if sum(math.log10(g / 100) for g in steps if g > 100) < SPACING_EVIDENCE:
        return None
    return hashlib.sha256(json.dumps(steps).encode()).hexdigest()[:24]


def measures(report: Report) -> dict[str, Measure]:
    """The median of every measured figure, by its path, for the class site's distributions."""
    out: dict[str, Measure] = {}
    for where, exp in report.each_experiment():
        if exp.summary is not None:
            out[where] = Measure(value=exp.summary.median, unit=exp.unit)
        for stage, m in exp.stages.items():
            out[f"{where}.stages.{stage}"] = Measure(value=m.summary.median, unit=m.unit)
    return out
