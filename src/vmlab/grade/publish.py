"""Which score is published: flags decide, and so do the tutor's decisions.

A hand-in without flags publishes what its checks give. A flagged one follows `--on-flag`:
- `review` (the default): the score is held (status `review`, no published score) until the tutor
  decides; Gradescope gets 0 with "under review", or no file (`--held-output none`);
- `zero`: 0 is published (status `flagged`);
- `keep`: the computed score is published, the flags stay for the record (status `flagged`).

Decisions live in a TOML file the tutor keeps (`--decisions decisions.toml`), one table per hand-in key:

    [s13]
    action = "zero"                 # accept | zero | points
    reason = "median edited by hand; admitted in the meeting"

    [s02]
    action = "points"
    points = 3
    reason = "shared the program with s18; half marks for both"
    report_sha256 = "..."           # optional: only for this exact report.json

A decision applies to flagged and unflagged hand-ins alike (status `decided`) and on every later
`vmlab grade`; one pinned to another report (the hand-in changed since) is not applied and the hand-in
is held again (flag `decision-stale`). A decision naming no hand-in is listed, never silently dropped.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from vmlab.errors import UsageError
from vmlab.grade.model import ClassOptions, Decision, Flag, Status, StudentResult


def read_decisions(path: Path) -> dict[str, Decision]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"cannot read decisions {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"decisions {path} is not valid TOML: {e}") from None
    out: dict[str, Decision] = {}
    for key, table in data.items():
        if not isinstance(table, dict):
            raise UsageError(f"decisions {path}: {key!r} must be a table [{key}] with action and reason")
        try:
            d = Decision.model_validate(table)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<table>"
            raise UsageError(
                f"decisions {path}: [{key}] {where}: {first['msg']}",
                hint='each table needs action = "accept" | "zero" | "points" and a reason',
            ) from None
        if (d.action == "points") != (d.points is not None):
            raise UsageError(f'decisions {path}: [{key}] points is given exactly when action is "points"')
        out[key] = d
    return out


def publish(
    students: list[StudentResult], options: ClassOptions, decisions: dict[str, Decision] | None = None
) -> tuple[list[StudentResult], list[str]]:
    """Every hand-in's status and published score; and the decisions that named no hand-in."""
    decisions = decisions or {}
    out = [_one(s, options, decisions.get(s.handin or s.student)) for s in students]
    keys = {s.handin or s.student for s in students}
    return out, sorted(k for k in decisions if k not in keys)


def _one(s: StudentResult, options: ClassOptions, decision: Decision | None) -> StudentResult:
    flags = [f for f in s.flags if f.code != "decision-stale"]
    computed = s.computed_score
    status: Status
    if any(f.blocking for f in flags):
        return s.model_copy(update={"status": "invalid", "score": None, "flags": flags, "decision": None})
    if decision is not None and decision.report_sha256 and decision.report_sha256 != s.report_sha256:
        flags.append(
            Flag(
                code="decision-stale",
                message=f"the decision ({decision.action}: {decision.reason}) was made on another "
                "report.json; the hand-in changed since",
            )
        )
        decision = None
    if decision is not None:
        status = "decided"
        score = {"accept": computed, "zero": 0.0}.get(decision.action, decision.points)
    elif not flags:
        status, score = "graded", computed
    elif options.on_flag == "review":
        status, score = "review", None
    else:
        status, score = "flagged", (0.0 if options.on_flag == "zero" else computed)
    return s.model_copy(update={"status": status, "score": score, "flags": flags, "decision": decision})
