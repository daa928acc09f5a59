"""What `vmlab grade` is asked to do: the hand-ins, the lab, the options and the tutor's secrets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vmlab.grade.model import ClassOptions, Decision
from vmlab.grade.roster import Roster
from vmlab.grade.rubric import Rubric

Progress = Callable[[str], None]


@dataclass
class GradeRequest:
    hand_ins: list[Path]
    lab: str | None = None
    options: ClassOptions = field(default_factory=ClassOptions)
    shard: tuple[int, int] | None = None
    signature_key: bytes | None = None
    rerun_secret: bytes | None = None
    roster: Roster | None = None
    decisions: dict[str, Decision] = field(default_factory=dict)
    rubric: Rubric | None = None
